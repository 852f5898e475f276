using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models.T5;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// T5 (v1.0 relu with a tied head, v1.1 gated-gelu with an untied head) against transformers v4.44's
/// T5ForConditionalGeneration: fixtures/hf-t5/&lt;case&gt;/expected.json (see the README there), within its tolerance
/// |a − b| ≤ 1e-5 + 1e-5·|b|, and greedy tokens exactly.
/// </summary>
public sealed class T5ParityTests
{
    public static TheoryData<string> Cases() => ["t5_tiny", "t5v11_tiny_gated"];

    static string Dir(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", name);
    static JsonObject Expected(string name) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Dir(name), "expected.json")))!;

    [Theory]
    [MemberData(nameof(Cases))]
    public void Teacher_forced_encoder_decoder_states_logits_and_logprobs_match_transformers(string name)
    {
        using var scope = NewDisposeScope();
        var model = T5Checkpoint.Load(Dir(name));
        var f = (JsonObject)Expected(name)["forward"]![0]!;
        var ids = HfFixture.Ints(f["input_ids"])!;
        var mask = HfFixture.Ints(f["attention_mask"])!;
        var decIds = HfFixture.Ints(f["decoder_input_ids"])!;
        var decMask = HfFixture.Ints(f["decoder_attention_mask"])!;
        var compare = HfFixture.Ints(f["compare_mask"])!;
        using var _ = no_grad();
        var encoder = model.Encode(ids, mask);
        HfFixture.AssertClose(HfFixture.Floats(f["encoder_last_hidden_state"]!), encoder, mask, $"{name} encoder_last_hidden_state");
        var states = new List<Tensor>();
        var decoded = model.Decode(decIds, encoder, mask, decMask, hiddenStates: states);
        var expectedStates = f["decoder_hidden_states"]!.AsArray();
        Assert.Equal(expectedStates.Count, states.Count);
        for (int i = 0; i < states.Count; i++)
            HfFixture.AssertClose(HfFixture.Floats(expectedStates[i]!), states[i], compare, $"{name} decoder_hidden_states[{i}]");
        var logits = model.Head(decoded);
        HfFixture.AssertClose(HfFixture.Floats(f["logits"]!), logits, compare, $"{name} logits");
        // token_logprobs: log-softmax at position t scored on decoder token t+1.
        long t = decIds.shape[1];
        var logprobs = logits.narrow(1, 0, t - 1).log_softmax(-1).gather(2, decIds.narrow(1, 1, t - 1).unsqueeze(-1)).squeeze(-1);
        HfFixture.AssertClose(HfFixture.Floats(f["token_logprobs"]!), logprobs, HfFixture.Ints(f["token_logprobs_mask"]), $"{name} token_logprobs");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_match_transformers_generate_with_and_without_the_cache(string name)
    {
        using var scope = NewDisposeScope();
        var model = T5Checkpoint.Load(Dir(name));
        var sampler = new Seq2SeqSampler(model);
        foreach (var g in Expected(name)["generate"]!.AsArray().Select(n => (JsonObject)n!))
        {
            var ids = HfFixture.Ints(g["input_ids"])!;
            var mask = HfFixture.Ints(g["attention_mask"])!;
            var options = new SamplingOptions { Temperature = 0, MaxNewTokens = (int)g["max_new_tokens"]!, StopAtEos = false };
            var expected = HfFixture.IntRows(g["new_tokens"]!);
            foreach (bool cache in new[] { true, false })
            {
                var stepLogits = new List<Tensor>();
                var (tokens, _, _) = sampler.Sample(ids, mask, options, useCache: cache, stepLogits: stepLogits);
                Assert.Equal(expected.Select(r => r.Select(x => (int)x).ToArray()).ToArray(), tokens);
                HfFixture.AssertClose(HfFixture.Floats(g["step_logits"]!), stack(stepLogits), null, $"{name} {g["name"]} step_logits (cache {cache})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Save_writes_exactly_the_transformers_key_set_and_loads_back_bit_identical(string name)
    {
        using var scope = NewDisposeScope();
        var model = T5Checkpoint.Load(Dir(name));
        using var dir = new RlhfSharp.Tests.Tokenization.TempDir();
        var target = Path.Combine(dir.Path, "saved");
        T5Checkpoint.Save(model, target);
        var keys = RlhfSharp.Checkpoints.SafeTensorsHeader.Read(Path.Combine(target, "model.safetensors")).Entries.Select(e => e.Name).Order(StringComparer.Ordinal);
        var expectedKeys = Expected(name)["saved_keys"]!.AsArray().Select(k => (string)k!).Order(StringComparer.Ordinal);
        Assert.Equal(expectedKeys, keys);
        var again = T5Checkpoint.Load(target);
        Assert.Equal(model.Config.ToJson()["feed_forward_proj"]!.ToJsonString(), again.Config.ToJson()["feed_forward_proj"]!.ToJsonString());
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (n, p) in again.named_parameters()) Assert.True(p.eq(before[n]).all().item<bool>(), $"{n} changed in the round trip");
    }

    [Fact]
    public void Relative_position_buckets_follow_transformers_rule()
    {
        // Expected values: fixtures/hf-t5/relative_buckets.py (modeling_t5.py's rule in PyTorch 1.13 float32), for the
        // fixtures' 8 buckets / distance 16 and T5's default 32 / 128.
        var small = tensor(new long[] { -20, -8, -4, -2, -1, 0, 1, 2, 4, 8, 20 });
        Assert.Equal(new long[] { 3, 3, 2, 2, 1, 0, 5, 6, 6, 7, 7 }, T5RelativePosition.Bucket(small, true, 8, 16).data<long>().ToArray());
        Assert.Equal(new long[] { 7, 6, 4, 2, 1, 0, 0, 0, 0, 0, 0 }, T5RelativePosition.Bucket(small, false, 8, 16).data<long>().ToArray());
        var wide = tensor(new long[] { -200, -128, -64, -40, -16, -9, -8, -7, 0, 7, 8, 9, 16, 40, 64, 128, 200 });
        Assert.Equal(new long[] { 15, 15, 14, 12, 10, 8, 8, 7, 0, 23, 24, 24, 26, 28, 30, 31, 31 }, T5RelativePosition.Bucket(wide, true, 32, 128).data<long>().ToArray());
        Assert.Equal(new long[] { 31, 31, 26, 23, 16, 9, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, T5RelativePosition.Bucket(wide, false, 32, 128).data<long>().ToArray());
    }
}
