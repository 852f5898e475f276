using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// Options of the classic families that the public hf-wave2 cases do not cover, each against its fixture written by a
/// plain-torch forward as transformers v4.44 computes it (generate.py beside it checks that forward against the hf-wave2
/// cases' transformers logits first):
/// <list type="bullet">
/// <item>fixtures/opt-options: OPT's post-LN blocks (do_layer_norm_before false, OPT-350M's layout), enable_bias false and
/// _remove_final_layer_norm (checked against opt_tiny and opt_tiny_proj);</item>
/// <item>fixtures/neox-bloom-options: GPT-NeoX with attention_bias false and with a tied embed_out, and BLOOM with
/// apply_residual_connection_post_layernorm (checked against neox_tiny_parallel, neox_tiny_sequential and bloom_tiny).</item>
/// </list>
/// Logits unpadded and left-padded at the real positions, and the save writing exactly the tensors HF has.
/// </summary>
public sealed class ClassicOptionsParityTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-classic-options-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static JsonObject Case(string fixture, string name) =>
        ((JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", fixture, "expected.json")))!["cases"]!)
            .Select(c => (JsonObject)c!).Single(c => c["case"]!.GetValue<string>() == name);

    [Theory]
    [InlineData("opt-options", "post_ln")]
    [InlineData("opt-options", "no_bias_no_final_norm")]
    [InlineData("opt-options", "post_ln_no_bias")]
    [InlineData("neox-bloom-options", "neox_no_attention_bias")]
    [InlineData("neox-bloom-options", "neox_tied_embed_out")]
    [InlineData("neox-bloom-options", "bloom_residual_after_layernorm")]
    public void Logits_match_and_the_save_has_exactly_hfs_tensors(string fixture, string name)
    {
        var c = Case(fixture, name);
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
                // The NeoX/BLOOM rows give their positions (from the mask); OPT takes its positions from the mask itself.
                var logits = HfFixture.Ints(row["position_ids"]) is { } positions ? model.Forward(ids, mask, positions) : model.Forward(ids, mask);
                HfFixture.AssertClose(HfFixture.Floats(row["logits"]!), logits, HfFixture.Ints(row["compare_mask"]), $"{name}/{row["name"]}");
            }

        string saved = Path.Combine(tmp, name + "-saved");
        HuggingFaceCheckpoint.Save(model, saved);
        Assert.Equal(weights.Select(kv => kv.Key).Order(StringComparer.Ordinal), HuggingFaceCheckpoint.Read(saved).Weights.Keys.Order(StringComparer.Ordinal));
        var savedConfig = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(saved, "config.json")))!;
        foreach (var (key, value) in (JsonObject)c["config"]!)
            Assert.Equal(value!.GetValue<bool>(), savedConfig[key]!.GetValue<bool>());
    }
}
