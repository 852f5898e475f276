using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// Phi-3's longrope against fixtures/phi3-longrope (generate.py: Phi-3's forward as transformers v4.44 computes it,
/// checked there against hf-wave3/phi3_tiny's transformers logits first), on phi3_tiny's weights with
/// original_max_position_embeddings 16: the short factors while the current length is at most 16, the long ones past
/// it, and cos/sin scaled by sqrt(1 + ln(64/16) / ln 16); through the KV cache each step picks its factors by its own
/// length while the cached keys keep theirs, as HF does.
/// </summary>
public sealed class LongRopeParityTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("rlhf-longrope-").FullName;
    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void Short_factors_up_to_the_original_length_long_ones_past_it_full_and_cached()
    {
        var expected = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "phi3-longrope", "expected.json")))!;
        var fx = new HfFixture("phi3_tiny", "hf-wave3");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(fx.Dir, "config.json")))!;
        config["original_max_position_embeddings"] = expected["original_max_position_embeddings"]!.GetValue<int>();
        config["rope_scaling"] = new JsonObject
        {
            ["type"] = "longrope",
            ["short_factor"] = expected["short_factor"]!.DeepClone(),
            ["long_factor"] = expected["long_factor"]!.DeepClone(),
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        File.Copy(Path.Combine(fx.Dir, "model.safetensors"), Path.Combine(dir, "model.safetensors"));

        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir);
        Assert.Equal("longrope", model.Config.RopeScaling!.Type);
        using var _ = no_grad();
        var tokens = ((JsonArray)expected["input_ids"]!).Select(t => t!.GetValue<long>()).ToArray();
        int n = tokens.Length, prefill = expected["prefill"]!.GetValue<int>();
        var ids = tensor(tokens, [1, n]);

        HfFixture.AssertClose(HfFixture.Floats(expected["logits_first_12"]!).unsqueeze(0), model.Forward(ids.narrow(1, 0, prefill)), null, "12 tokens (short factors)");
        HfFixture.AssertClose(HfFixture.Floats(expected["logits_all_24"]!).unsqueeze(0), model.Forward(ids), null, "24 tokens (long factors)");

        var steps = HfFixture.Floats(expected["step_logits"]!); // (1 + n − prefill, V)
        var positions = arange(n, int64).unsqueeze(0);
        using var cache = new KvCache(model.Config, 1, n, float32, CPU);
        var logits = model.Forward(ids.narrow(1, 0, prefill), ones(1, prefill, int64), positions.narrow(1, 0, prefill), cache, lastOnly: true).squeeze(1);
        HfFixture.AssertClose(steps[0].unsqueeze(0), logits, null, "cached prefill");
        for (int s = prefill; s < n; s++)
        {
            logits = model.Forward(ids.narrow(1, s, 1), ones(1, s + 1, int64), positions.narrow(1, s, 1), cache, lastOnly: true).squeeze(1);
            HfFixture.AssertClose(steps[s - prefill + 1].unsqueeze(0), logits, null, $"cached step at position {s}");
        }
    }
}
