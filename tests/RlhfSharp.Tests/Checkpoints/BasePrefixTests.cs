using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>
/// Checkpoints saved from HF's bare body (old facebook/opt-* files: <c>decoder.*</c> without <c>model.</c>) load as
/// transformers loads them, by the base prefix (modeling_utils.py <c>_load_pretrained_model</c>), and save back with the
/// full names.
/// </summary>
public sealed class BasePrefixTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-prefix-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Theory]
    [InlineData("opt_tiny", "model.")]
    [InlineData("rwkv_tiny", "rwkv.")]
    public void A_file_without_the_base_prefix_loads_the_same_model(string name, string prefix)
    {
        var fx = new HfFixture(name, "hf-wave2");
        string bare = Path.Combine(tmp, name);
        Directory.CreateDirectory(bare);
        File.Copy(Path.Combine(fx.Dir, "config.json"), Path.Combine(bare, "config.json"));
        var (_, weights) = HuggingFaceCheckpoint.Read(fx.Dir);
        var stripped = weights.Select(kv => new KeyValuePair<string, Tensor>(kv.Key.StartsWith(prefix) ? kv.Key[prefix.Length..] : kv.Key, kv.Value)).ToList();
        Assert.DoesNotContain(stripped, kv => kv.Key.StartsWith(prefix));
        SafeTensors.Save(Path.Combine(bare, "model.safetensors"), stripped);

        using var model = HuggingFaceCheckpoint.LoadCausalLM(bare);
        using var original = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        var c = fx.Cases("forward").First();
        var ids = HfFixture.Ints(c["input_ids"])!;
        using (no_grad())
        {
            var logits = model.Forward(ids);
            Assert.True(logits.eq(original.Forward(ids)).all().item<bool>(), "same weights, same logits");
            HfFixture.AssertClose(HfFixture.Floats(c["logits"]!), logits, HfFixture.Ints(c["compare_mask"]), name + " logits");
        }
        string saved = Path.Combine(tmp, name + "-saved");
        HuggingFaceCheckpoint.Save(model, saved);
        var expected = ((JsonArray)fx.Expected["saved_keys"]!).Select(k => k!.GetValue<string>()).OrderBy(k => k, StringComparer.Ordinal);
        Assert.Equal(expected, HuggingFaceCheckpoint.Read(saved).Weights.Keys.OrderBy(k => k, StringComparer.Ordinal));
    }
}
