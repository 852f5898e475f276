using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Generation;

public class SamplerTests
{
    static readonly Lazy<CausalLM> Stories = new(() => Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel));
    static Sampler NewSampler() => new(Stories.Value) { PadId = 0, EosIds = [2] };
    static readonly int[][] Prompts = [[1, 403, 407], [1], [1, 403, 407, 261, 378, 432]];

    [Fact]
    public void Same_seed_gives_same_tokens_and_another_seed_differs()
    {
        var o = new SamplingOptions { Temperature = 1.0, MaxNewTokens = 24, Seed = 7 };
        var a = NewSampler().Generate(Prompts, o);
        var b = NewSampler().Generate(Prompts, o);
        var c = NewSampler().Generate(Prompts, o with { Seed = 8 });
        for (int i = 0; i < Prompts.Length; i++) Assert.Equal(a[i].NewIds, b[i].NewIds);
        Assert.NotEqual(a.SelectMany(x => x.NewIds), c.SelectMany(x => x.NewIds));
    }

    [Fact]
    public void Left_padded_batch_gives_each_row_what_it_gets_alone()
    {
        var o = new SamplingOptions { Temperature = 0, MaxNewTokens = 20 };
        var batch = NewSampler().Generate(Prompts, o);
        for (int i = 0; i < Prompts.Length; i++)
        {
            var alone = NewSampler().Generate([Prompts[i]], o)[0];
            Assert.Equal(alone.NewIds, batch[i].NewIds);
            for (int t = 0; t < alone.Logprobs.Length; t++) Assert.InRange(batch[i].Logprobs[t] - alone.Logprobs[t], -1e-4f, 1e-4f);
        }
    }

    [Fact]
    public void Logprobs_are_the_models_log_softmax_at_the_chosen_tokens()
    {
        var o = new SamplingOptions { Temperature = 1.0, MaxNewTokens = 12, Seed = 3 };
        var r = NewSampler().Generate([[1, 403]], o)[0];
        using var _ = no_grad();
        var ids = tensor(r.Ids.Select(x => (long)x).ToArray(), [1, r.Ids.Length]);
        var logprobs = Stories.Value.Forward(ids).log_softmax(-1)[0];
        for (int t = 0; t < r.NewIds.Length; t++)
            Assert.InRange(r.Logprobs[t] - logprobs[1 + t, r.NewIds[t]].item<float>(), -1e-4f, 1e-4f);
    }

    [Fact]
    public void Top_k_1_is_greedy_and_tiny_top_p_is_greedy()
    {
        var greedy = NewSampler().Generate(Prompts, new SamplingOptions { Temperature = 0, MaxNewTokens = 16 });
        var topK = NewSampler().Generate(Prompts, new SamplingOptions { Temperature = 1.5, TopK = 1, MaxNewTokens = 16, Seed = 11 });
        var topP = NewSampler().Generate(Prompts, new SamplingOptions { Temperature = 1.5, TopP = 1e-6, MaxNewTokens = 16, Seed = 12 });
        for (int i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(greedy[i].NewIds, topK[i].NewIds);
            Assert.Equal(greedy[i].NewIds, topP[i].NewIds);
        }
    }

    [Fact]
    public void Top_k_keeps_samples_inside_the_k_most_likely_tokens()
    {
        using var _ = no_grad();
        var top3 = Stories.Value.Forward(tensor(new long[] { 1 }, [1, 1])).reshape(-1).topk(3).indexes.data<long>().ToArray();
        for (ulong seed = 0; seed < 20; seed++)
        {
            var s = NewSampler().Generate([[1]], new SamplingOptions { Temperature = 2.0, TopK = 3, MaxNewTokens = 1, Seed = seed })[0];
            Assert.Contains((long)s.NewIds[0], top3);
        }
    }

    [Fact]
    public void Repetition_penalty_changes_greedy_output_away_from_repeats()
    {
        var plain = NewSampler().Generate([[1]], new SamplingOptions { Temperature = 0, MaxNewTokens = 40 })[0];
        var penalised = NewSampler().Generate([[1]], new SamplingOptions { Temperature = 0, MaxNewTokens = 40, RepetitionPenalty = 2.0 })[0];
        Assert.NotEqual(plain.NewIds, penalised.NewIds);
        int Repeats(int[] ids) => ids.Length - ids.Distinct().Count();
        Assert.True(Repeats(penalised.NewIds) < Repeats(plain.NewIds), $"{Repeats(penalised.NewIds)} vs {Repeats(plain.NewIds)}");
    }

    [Fact]
    public void Eos_ends_a_row_and_min_new_tokens_forbids_it_until_then()
    {
        // Force EOS: make it the only allowed token via the EOS set containing the greedy first token.
        var first = NewSampler().Generate([[1]], new SamplingOptions { Temperature = 0, MaxNewTokens = 1 })[0].NewIds[0];
        var sampler = new Sampler(Stories.Value) { PadId = 0, EosIds = [first] };
        var stopped = sampler.Generate([[1]], new SamplingOptions { Temperature = 0, MaxNewTokens = 10 })[0];
        Assert.Equal([first], stopped.NewIds);
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        var held = sampler.Generate([[1]], new SamplingOptions { Temperature = 0, MaxNewTokens = 10, MinNewTokens = 5 })[0];
        Assert.True(held.NewIds.Length >= 5);
        Assert.DoesNotContain(first, held.NewIds.Take(5));
    }

    [Fact]
    public void Finished_rows_are_padded_and_masked_in_the_batch_tensors()
    {
        var first = NewSampler().Generate([[1]], new SamplingOptions { Temperature = 0, MaxNewTokens = 1 })[0].NewIds[0];
        var sampler = new Sampler(Stories.Value) { PadId = 0, EosIds = [first] };
        using var scope = NewDisposeScope();
        var (ids, mask) = sampler.LeftPad([[1], [1, 403, 407]]);
        using var batch = sampler.Sample(ids, mask, new SamplingOptions { Temperature = 0, MaxNewTokens = 6 });
        var resp = batch.ResponseMask.data<float>().ToArray();
        int n = (int)batch.ResponseMask.shape[1];
        Assert.Equal(1f, resp[0]);
        Assert.All(resp.Skip(1).Take(n - 1), v => Assert.Equal(0f, v));  // row 0 stopped at its first token
        Assert.Equal(batch.NewTokens[1].Length, (int)resp.Skip(n).Sum());
        var seq = batch.Sequences.data<long>().ToArray();
        Assert.All(seq.Skip(batch.PromptLength + 1).Take(n - 1), v => Assert.Equal(0L, v));
    }
}
