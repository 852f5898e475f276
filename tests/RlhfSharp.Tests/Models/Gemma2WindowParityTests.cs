using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// Gemma 2's sliding window on its even layers, shorter than the sequence (hf-wave3/gemma2_tiny's 16 never bites),
/// against fixtures/gemma2-window (generate.py: Gemma 2's eager forward as transformers v4.44 computes it, checked there
/// against gemma2_tiny's three transformers forward cases first). On gemma2_tiny's weights with sliding_window 3, with
/// the fixture's soft-capping and with both caps null: full-forward logits of a 10-token row and a left-padded one,
/// the same rows through the KV cache one token at a time after a 4-token prefill, and greedy tokens of
/// <see cref="Sampler"/> from the first 4 tokens, at the README's 1e-5 + 1e-5·|b|.
/// </summary>
public sealed class Gemma2WindowParityTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("rlhf-gemma2-window-").FullName;
    public void Dispose() => Directory.Delete(dir, recursive: true);

    static readonly JsonObject Expected = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "gemma2-window", "expected.json")))!;

    [Theory]
    [InlineData("capped")]
    [InlineData("uncapped")]
    public void Window_shorter_than_the_sequence_full_cached_and_greedy(string variant)
    {
        var expected = (JsonObject)Expected[variant]!;
        var fx = new HfFixture("gemma2_tiny", "hf-wave3");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(fx.Dir, "config.json")))!;
        int window = Expected["sliding_window"]!.GetValue<int>();
        config["sliding_window"] = window;
        config["attn_logit_softcapping"] = expected["attn_logit_softcapping"]?.DeepClone();
        config["final_logit_softcapping"] = expected["final_logit_softcapping"]?.DeepClone();
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        File.Copy(Path.Combine(fx.Dir, "model.safetensors"), Path.Combine(dir, "model.safetensors"));

        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir);
        Assert.Equal(window, model.Config.SlidingWindow);
        Assert.True(model.Config.WindowedLayers(0) && !model.Config.WindowedLayers(1));
        Assert.Equal(expected["attn_logit_softcapping"]?.GetValue<double>(), model.Config.AttnLogitSoftcap);
        Assert.Equal(expected["final_logit_softcapping"]?.GetValue<double>(), model.Config.FinalLogitSoftcap);
        using var _ = no_grad();

        var rows = HfFixture.IntRows(Expected["input_ids"]!);
        var maskRows = HfFixture.IntRows(Expected["attention_mask"]!);
        int b = rows.Length, n = rows[0].Length, prompt = Expected["prompt"]!.GetValue<int>();
        var ids = tensor(rows.SelectMany(r => r).ToArray(), [b, n]);
        var mask = tensor(maskRows.SelectMany(r => r).ToArray(), [b, n]);
        var positions = Transformer.PositionsFromMask(mask);
        var logits = HfFixture.Floats(expected["logits"]!); // (B, n, V)

        HfFixture.AssertClose(logits, model.Forward(ids, mask, positions), mask, $"{variant}: full forward");

        using (var cache = new KvCache(model.Config, b, n, float32, CPU))
        {
            var step = model.Forward(ids.narrow(1, 0, prompt), mask.narrow(1, 0, prompt), positions.narrow(1, 0, prompt), cache);
            HfFixture.AssertClose(logits.narrow(1, 0, prompt), step, mask.narrow(1, 0, prompt), $"{variant}: cached prefill");
            for (int s = prompt; s < n; s++)
            {
                step = model.Forward(ids.narrow(1, s, 1), mask.narrow(1, 0, s + 1), positions.narrow(1, s, 1), cache);
                HfFixture.AssertClose(logits.narrow(1, s, 1), step, mask.narrow(1, s, 1), $"{variant}: cached step at column {s}");
            }
        }

        // Greedy from the first row's prompt: the step logits through the cache, then the product's sampler.
        var greedy = ((JsonArray)expected["greedy_tokens"]!).Select(t => t!.GetValue<int>()).ToArray();
        var stepLogits = HfFixture.Floats(expected["greedy_step_logits"]!); // (new, V)
        var sequence = rows[0].Take(prompt).Concat(greedy.Select(t => (long)t)).ToArray();
        var seq = tensor(sequence, [1, sequence.Length]);
        var seqPositions = arange(sequence.Length, int64).unsqueeze(0);
        using (var cache = new KvCache(model.Config, 1, sequence.Length, float32, CPU))
        {
            var last = model.Forward(seq.narrow(1, 0, prompt), ones(1, prompt, int64), seqPositions.narrow(1, 0, prompt), cache, lastOnly: true).squeeze(1);
            for (int k = 0; k < greedy.Length; k++)
            {
                HfFixture.AssertClose(stepLogits[k].unsqueeze(0), last, null, $"{variant}: greedy step {k}");
                Assert.Equal(greedy[k], (int)last.argmax(-1).item<long>());
                int s = prompt + k;
                last = model.Forward(seq.narrow(1, s, 1), ones(1, s + 1, int64), seqPositions.narrow(1, s, 1), cache, lastOnly: true).squeeze(1);
            }
        }
        var sampler = new Sampler(model) { PadId = 0, EosIds = [2] };
        var result = sampler.Generate([rows[0].Take(prompt).Select(t => (int)t).ToArray()], new SamplingOptions { Temperature = 0, MaxNewTokens = greedy.Length });
        Assert.Equal(greedy, result[0].NewIds);
    }
}
