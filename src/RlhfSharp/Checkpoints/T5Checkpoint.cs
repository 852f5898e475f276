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
        Fill(model, dir, config, shards, name => IsTiedCopy(name, config) ? null : name, []);
        if (device is not null && device.type != DeviceType.CPU) model.to(device);
        model.eval();
        return model;
    }

    /// <summary>
    /// Loads a T5 reward model (transformers' <c>T5ForSequenceClassification</c>: keys <c>transformer.*</c> and
    /// <c>classification_head.*</c>, <c>normalize_reward</c>/<c>mean</c>/<c>std</c> in config.json as OpenRLHF writes them).
    /// With <paramref name="allowNewHead"/> a language-model folder (T5ForConditionalGeneration, or a PEFT adapter on one)
    /// is read into the body and the head starts new, as HF's <c>from_pretrained</c> of the classification class on an LM
    /// checkpoint does (InstructGPT §3.5: the RM starts from the SFT model); seed the caller for a reproducible head.
    /// </summary>
    public static T5ForSequenceClassification LoadSequenceClassification(string dir, ScalarType dtype = ScalarType.Float32, bool allowNewHead = false)
    {
        if (!Directory.Exists(dir)) throw new RlhfException($"{dir}: model folder not found.");
        if (Lora.PeftAdapter.IsAdapterFolder(dir))
        {
            bool rewardAdapter = Lora.PeftAdapter.ReadInfo(dir).ScoreHead;
            if (!allowNewHead && !rewardAdapter) throw new RlhfException($"{dir}: a PEFT adapter on a T5 language model, not a T5 reward model.");
            // A LoRA reward model (task_type SEQ_CLS): its base language model, then its adapters and head.
            using var lm = Lora.T5Lora.LoadMerged(rewardAdapter ? Lora.PeftAdapter.ResolveBase(dir) : dir, dtype);
            var fromLm = new T5ForSequenceClassification(lm.Config, 1, dtype);
            var source = lm.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            using (no_grad())
                foreach (var (name, p) in fromLm.transformer.named_parameters()) p.copy_(source[name]);
            fromLm.classification_head.Initialize();
            if (rewardAdapter) Lora.T5Lora.MergeRewardModel(fromLm, dir);
            fromLm.eval();
            return fromLm;
        }
        var config = T5Config.Load(Path.Combine(dir, "config.json"));
        var shards = ShardPaths(dir).Select(SafeTensorsHeader.Read).ToList();
        bool hasHead = shards.Any(s => s.Entries.Any(e => e.Name.StartsWith("classification_head.", StringComparison.Ordinal)));
        if (!hasHead && !allowNewHead)
            throw new RlhfException($"{dir}: a T5 language model (no classification_head weights), not a T5 reward model (T5ForSequenceClassification).");
        var json = config.Source ?? new JsonObject();
        // T5ClassificationHead's dropout (modeling_t5.py, before dense and before out_proj) is not implemented: refused by name.
        if (json["classifier_dropout"] is JsonValue cd && cd.TryGetValue(out double classifierDropout) && classifierDropout != 0)
            throw new RlhfException($"{dir}/config.json: classifier_dropout = {classifierDropout} (T5ForSequenceClassification): the head's dropout in training is not implemented; set it to 0.0.");
        int labels = hasHead ? (json["id2label"] as JsonObject)?.Count ?? 2 : 1; // PretrainedConfig's num_labels default is 2
        var model = new T5ForSequenceClassification(config, labels, dtype);
        if (hasHead)
        {
            Fill(model, dir, config, shards, name => name is "transformer.encoder.embed_tokens.weight" or "transformer.decoder.embed_tokens.weight" ? null : name, []);
            if ((bool?)json["normalize_reward"] == true)
            {
                model.RewardMean = (double?)json["mean"] ?? throw new RlhfException($"{dir}/config.json: normalize_reward is true but 'mean' is missing.");
                model.RewardStd = (double?)json["std"] ?? 1.0;
            }
        }
        else
        {
            // An LM folder: its keys are the body's without HF's base prefix; an untied lm_head has no place here.
            Fill(model, dir, config, shards, name => IsTiedCopy(name, config) || name == "lm_head.weight" ? null : "transformer." + name,
                ["classification_head."]);
            model.classification_head.Initialize();
        }
        model.eval();
        return model;
    }

    /// <summary>
    /// Copies every tensor of the files into the parameter <paramref name="rename"/> names (null: skip it, a tied copy HF
    /// ignores too); parameters under <paramref name="leftOut"/> prefixes may be absent (a new head).
    /// </summary>
    static void Fill(nn.Module model, string dir, T5Config config, List<SafeTensorsHeader> shards, Func<string, string?> rename, string[] leftOut)
    {
        var ours = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var seen = new HashSet<string>();
        using (no_grad())
        {
            foreach (var shard in shards)
            {
                using var file = File.OpenHandle(shard.Path);
                foreach (var e in shard.Entries)
                {
                    if (rename(e.Name) is not string name) continue;
                    if (!ours.TryGetValue(name, out var p))
                        throw new RlhfException($"{shard.Path}: unexpected weight '{e.Name}' for model_type t5 ({config.NumLayers}+{config.NumDecoderLayers} layers, {(config.IsGatedAct ? "gated" : "plain")} feed-forward, {(config.TieWordEmbeddings ? "tied" : "untied")} head).");
                    if (!e.Shape.SequenceEqual(p.shape))
                        throw new RlhfException($"{shard.Path}: weight '{e.Name}' has shape [{e.ShapeText}], but config.json implies [{string.Join("x", p.shape)}].");
                    SafeTensors.CopyInto(file, shard, e, p, transpose: false);
                    seen.Add(name);
                }
            }
        }
        var missing = ours.Keys.Where(k => !seen.Contains(k) && !leftOut.Any(prefix => k.StartsWith(prefix, StringComparison.Ordinal))).ToList();
        if (missing.Count > 0) throw new RlhfException($"{dir}: missing weight '{missing[0]}'{(missing.Count > 1 ? $" and {missing.Count - 1} more" : "")} (model_type t5).");
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
    public static void Save(T5ForConditionalGeneration model, string dir, bool bf16 = false, Action<string>? writeExtras = null) =>
        Write(model, model.Config.ToJson(), dir, bf16, writeExtras);

    /// <summary>
    /// Writes a T5 reward model as transformers saves <c>T5ForSequenceClassification</c>: its key set (the tied
    /// <c>embed_tokens</c> copies left out), config.json naming the class with one id2label entry per label, and the
    /// normalisation as OpenRLHF writes it (<c>normalize_reward</c>, <c>mean</c>, <c>std</c>), as the decoder-only RM does.
    /// </summary>
    public static void Save(T5ForSequenceClassification model, string dir, bool bf16 = false, Action<string>? writeExtras = null)
    {
        var json = model.Config.ToJson();
        json["architectures"] = new JsonArray("T5ForSequenceClassification");
        var id2label = new JsonObject();
        var label2id = new JsonObject();
        for (int i = 0; i < model.NumLabels; i++) { id2label[i.ToString()] = $"LABEL_{i}"; label2id[$"LABEL_{i}"] = i; }
        json["id2label"] = id2label;
        json["label2id"] = label2id;
        json.Remove("normalize_reward"); json.Remove("mean"); json.Remove("std");
        if (model.RewardMean is double mean) { json["normalize_reward"] = true; json["mean"] = mean; json["std"] = model.RewardStd ?? 1.0; }
        Write(model, json, dir, bf16, writeExtras);
    }

    static void Write(nn.Module model, JsonObject config, string dir, bool bf16, Action<string>? writeExtras)
    {
        AtomicDirectory.Write(dir, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            SafeTensors.Save(Path.Combine(tmp, WeightsFile), model.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)), bf16);
            writeExtras?.Invoke(tmp);
        });
    }
}
