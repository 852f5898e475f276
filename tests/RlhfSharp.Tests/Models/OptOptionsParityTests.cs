using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// OPT's post-LN blocks (do_layer_norm_before false, OPT-350M's layout), enable_bias false and _remove_final_layer_norm,
/// which the public hf-wave2 cases do not cover, against fixtures/opt-options (generate.py: OPT's forward as
/// transformers v4.44 computes it, checked there against opt_tiny's and opt_tiny_proj's transformers logits first):
/// logits unpadded and left-padded at the real positions, and the save writing exactly the tensors HF has.
/// </summary>
public sealed class OptOptionsParityTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-opt-options-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static JsonObject Case(string name) =>
        ((JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "opt-options", "expected.json")))!["cases"]!)
            .Select(c => (JsonObject)c!).Single(c => c["case"]!.GetValue<string>() == name);

    [Theory]
    [InlineData("post_ln")]
    [InlineData("no_bias_no_final_norm")]
    [InlineData("post_ln_no_bias")]
    public void Logits_match_and_the_save_has_exactly_hfs_tensors(string name)
    {
        var c = Case(name);
        var fx = new HfFixture(c["base"]!.GetValue<string>(), "hf-wave2");
        string dir = Path.Combine(tmp, name);
        Directory.CreateDirectory(dir);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(fx.Dir, "config.json")))!;
        foreach (var (key, value) in (JsonObject)c["config"]!) config[key] = value!.DeepClone();
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        var dropped = ((JsonArray)c["dropped_keys"]!).Select(k => k!.GetValue<string>()).ToHashSet();
        var weights = SafeTensors.Load(Path.Combine(fx.Dir, "model.safetensors")).Where(kv => !dropped.Contains(kv.Key)).ToList();
        SafeTensors.Save(Path.Combine(dir, "model.safetensors"), weights);

        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir);
        using (no_grad())
            foreach (var row in ((JsonArray)c["forward"]!).Select(r => (JsonObject)r!))
            {
                var ids = HfFixture.Ints(row["input_ids"])!;
                var mask = HfFixture.Ints(row["attention_mask"])!;
                HfFixture.AssertClose(HfFixture.Floats(row["logits"]!), model.Forward(ids, mask), HfFixture.Ints(row["compare_mask"]), $"{name}/{row["name"]}");
            }

        string saved = Path.Combine(tmp, name + "-saved");
        HuggingFaceCheckpoint.Save(model, saved);
        Assert.Equal(weights.Select(kv => kv.Key).Order(StringComparer.Ordinal), HuggingFaceCheckpoint.Read(saved).Weights.Keys.Order(StringComparer.Ordinal));
        var savedConfig = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(saved, "config.json")))!;
        foreach (var (key, value) in (JsonObject)c["config"]!)
            Assert.Equal(value!.GetValue<bool>(), savedConfig[key]!.GetValue<bool>());
    }
}
