using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Models.T5;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// T5 models in Hugging Face folders: config.json and safetensors (one file or a sharded index) with exactly the keys
/// transformers v4.44's <c>save_pretrained</c> writes. Our parameter names are HF's, so loading copies each tensor into
/// the parameter of the same name; <c>encoder.embed_tokens.weight</c> and <c>decoder.embed_tokens.weight</c> (tied to
/// <c>shared</c>, found in older files) and a tied <c>lm_head.weight</c> are accepted and skipped, as HF ignores them.
/// </summary>
public static class T5Checkpoint
{
    const string WeightsFile = "model.safetensors", IndexFile = "model.safetensors.index.json";

    /// <summary>Loads a T5 folder in <paramref name="dtype"/>; errors name the file and the key.</summary>
    public static T5ForConditionalGeneration Load(string dir, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        if (!Directory.Exists(dir)) throw new RlhfException($"{dir}: model folder not found.");
        var config = T5Config.Load(Path.Combine(dir, "config.json"));
        var shards = ShardPaths(dir).Select(SafeTensorsHeader.Read).ToList();
        var model = new T5ForConditionalGeneration(config, dtype);
        var ours = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var seen = new HashSet<string>();
        using (no_grad())
        {
            foreach (var shard in shards)
            {
                using var file = File.OpenHandle(shard.Path);
                foreach (var e in shard.Entries)
                {
                    if (!ours.TryGetValue(e.Name, out var p))
                    {
                        if (IsTiedCopy(e.Name, config)) continue;
                        throw new RlhfException($"{shard.Path}: unexpected weight '{e.Name}' for model_type t5 ({config.NumLayers}+{config.NumDecoderLayers} layers, {(config.IsGatedAct ? "gated" : "plain")} feed-forward, {(config.TieWordEmbeddings ? "tied" : "untied")} head).");
                    }
                    if (!e.Shape.SequenceEqual(p.shape))
                        throw new RlhfException($"{shard.Path}: weight '{e.Name}' has shape [{e.ShapeText}], but config.json implies [{string.Join("x", p.shape)}].");
                    SafeTensors.CopyInto(file, shard, e, p, transpose: false);
                    seen.Add(e.Name);
                }
            }
        }
        var missing = ours.Keys.Where(k => !seen.Contains(k)).ToList();
        if (missing.Count > 0) throw new RlhfException($"{dir}: missing weight '{missing[0]}'{(missing.Count > 1 ? $" and {missing.Count - 1} more" : "")} (model_type t5).");
        if (device is not null && device.type != DeviceType.CPU) model.to(device);
        model.eval();
        return model;
    }

    static bool IsTiedCopy(string name, T5Config config) =>
        name is "encoder.embed_tokens.weight" or "decoder.embed_tokens.weight" || (config.TieWordEmbeddings && name == "lm_head.weight");

    static IEnumerable<string> ShardPaths(string dir)
    {
        string single = Path.Combine(dir, WeightsFile), index = Path.Combine(dir, IndexFile);
        if (File.Exists(single)) return [single];
        if (!File.Exists(index)) throw new RlhfException($"{dir}: no {WeightsFile} or {IndexFile} (pytorch_model.bin is not supported: convert it to safetensors).");
        JsonObject map;
        try { map = (JsonNode.Parse(File.ReadAllText(index)) as JsonObject)?["weight_map"] as JsonObject ?? throw new RlhfException($"{index}: key 'weight_map' is missing."); }
        catch (JsonException e) { throw new RlhfException($"{index}: invalid JSON ({e.Message})."); }
        var names = new List<string>();
        foreach (var (key, value) in map)
        {
            var file = (value as JsonValue)?.TryGetValue<string>(out var f) == true ? f : throw new RlhfException($"{index}: weight_map['{key}'] must be a file name.");
            if (file != Path.GetFileName(file)) throw new RlhfException($"{index}: weight_map['{key}'] names '{file}', not a file in the model folder.");
            if (!names.Contains(file)) names.Add(file);
        }
        return names.Select(n => Path.Combine(dir, n));
    }

    /// <summary>Writes the model as an HF folder (config.json, model.safetensors) through a temporary folder that then
    /// replaces <paramref name="dir"/>; <paramref name="writeExtras"/> adds tokenizer files.</summary>
    public static void Save(T5ForConditionalGeneration model, string dir, bool bf16 = false, Action<string>? writeExtras = null)
    {
        AtomicDirectory.Write(dir, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, "config.json"), model.Config.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            SafeTensors.Save(Path.Combine(tmp, WeightsFile), model.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)), bf16);
            writeExtras?.Invoke(tmp);
        });
    }
}
