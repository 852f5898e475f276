using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// Gemma, Gemma 2, Phi-3, Mistral with a sliding window shorter than the sequence, Mixtral and Qwen2-MoE against
/// transformers v4.44 (fixtures/hf-wave3), at the README's 1e-5 tolerance; and their save back to HF's exact key set.
/// </summary>
public class VariantParityTests
{
    public static readonly TheoryData<string> Cases = new() { "gemma_tiny", "gemma2_tiny", "phi3_tiny", "mistral_sliding_tiny", "mixtral_tiny", "qwen2moe_tiny" };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_hidden_states_and_logprobs_match_hf(string name)
    {
        var fx = new HfFixture(name, "hf-wave3");
        using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        foreach (var c in fx.Cases("forward"))
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            string what = $"{name}/{c["name"]}";
            var ids = HfFixture.Ints(c["input_ids"])!;
            var compare = HfFixture.Ints(c["compare_mask"])!;
            var hidden = new List<Tensor>();
            var logits = model.Forward(ids, HfFixture.Ints(c["attention_mask"]), HfFixture.Ints(c["position_ids"]), hiddenStates: hidden);

            HfFixture.AssertClose(HfFixture.Floats(c["logits"]!), logits, compare, what + " logits");
            var expectedHidden = (JsonArray)c["hidden_states"]!;
            Assert.Equal(expectedHidden.Count, hidden.Count);
            for (int i = 0; i < hidden.Count; i++)
                HfFixture.AssertClose(HfFixture.Floats(expectedHidden[i]!), hidden[i], compare, $"{what} hidden_states[{i}]");
            var logprobs = logits.narrow(1, 0, ids.shape[1] - 1).log_softmax(-1)
                .gather(2, ids.narrow(1, 1, ids.shape[1] - 1).unsqueeze(-1)).squeeze(-1);
            HfFixture.AssertClose(HfFixture.Floats(c["token_logprobs"]!), logprobs, HfFixture.Ints(c["token_logprobs_mask"]), what + " token_logprobs");
            Assert.False(logits.isnan().any().item<bool>(), what + ": NaN in logits");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Saved_folder_has_exactly_hf_keys_and_reloads_to_the_same_logits(string name)
    {
        var fx = new HfFixture(name, "hf-wave3");
        string dir = Path.Combine(Path.GetTempPath(), $"variant-save-{name}-{Guid.NewGuid():N}");
        try
        {
            using var model = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
            HuggingFaceCheckpoint.Save(model, dir);
            var (config, weights) = HuggingFaceCheckpoint.Read(dir);
            var expected = ((JsonArray)fx.Expected["saved_keys"]!).Select(k => k!.GetValue<string>()).OrderBy(k => k, StringComparer.Ordinal);
            Assert.Equal(expected, weights.Keys.OrderBy(k => k, StringComparer.Ordinal));
            var (original, hf) = HuggingFaceCheckpoint.Read(fx.Dir);
            foreach (var (key, t) in hf) Assert.True(t.eq(weights[key]).all().item<bool>(), $"{name}: {key} changed on save");
            Assert.Equal(original, config with { }, new ConfigShape());

            using var reloaded = HuggingFaceCheckpoint.LoadCausalLM(dir);
            using var _ = no_grad();
            var ids = HfFixture.Ints(fx.Cases("forward").First()["input_ids"])!;
            Assert.True(model.Forward(ids).eq(reloaded.Forward(ids)).all().item<bool>(), $"{name}: logits differ after save and reload");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The fields that decide the computation (records with lists compare lists by reference).</summary>
    sealed class ConfigShape : IEqualityComparer<TransformerConfig>
    {
        public bool Equals(TransformerConfig? a, TransformerConfig? b) =>
            a!.ToJson("X").ToJsonString() == b!.ToJson("X").ToJsonString();
        public int GetHashCode(TransformerConfig c) => 0;
    }
}
