using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Generation;

/// <summary>OpenAI's presence/frequency penalties and the model log-probabilities the sampler reports for logprobs.</summary>
public class SamplerPenaltyTests
{
    static readonly Lazy<CausalLM> Stories = new(() => Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel));
    static Sampler NewSampler() => new(Stories.Value) { PadId = 0, EosIds = [2] };
    static readonly int[][] Prompts = [[1, 403, 407], [1], [1, 403, 407, 261, 378, 432]];

    [Theory]
    [InlineData(1.2, 0.0)]
    [InlineData(2.0, 2.0)]
    public void Penalised_greedy_tokens_equal_openai_formula_by_hand(double presence, double frequency)
    {
        var o = new SamplingOptions { Temperature = 0, MaxNewTokens = 30, PresencePenalty = presence, FrequencyPenalty = frequency };
        var batch = NewSampler().Generate(Prompts, o);
        var plain = NewSampler().Generate(Prompts, o with { PresencePenalty = 0, FrequencyPenalty = 0 });
        for (int i = 0; i < Prompts.Length; i++)
            Assert.Equal(PenalisedGreedy.Tokens(Stories.Value, Prompts[i], 30, presence, frequency, new HashSet<int> { 2 }), batch[i].NewIds);
        // The penalty must have mattered somewhere, else the comparison above proves nothing.
        Assert.Contains(Enumerable.Range(0, Prompts.Length), i => !plain[i].NewIds.SequenceEqual(batch[i].NewIds));
    }

    [Fact]
    public void Positive_penalties_reduce_repeated_tokens()
    {
        int Repeats(IEnumerable<Completion> cs) => cs.Sum(c => c.NewIds.Length - c.NewIds.Distinct().Count());
        var o = new SamplingOptions { Temperature = 0, MaxNewTokens = 40 };
        int plain = Repeats(NewSampler().Generate(Prompts, o));
        int discouraged = Repeats(NewSampler().Generate(Prompts, o with { FrequencyPenalty = 1.0, PresencePenalty = 1.0 }));
        Assert.True(discouraged < plain, $"repeats: penalised {discouraged}, plain {plain}");
    }

    [Fact]
    public void Top_logprobs_are_the_raw_models_log_softmax_whatever_the_sampling_transforms()
    {
        // Temperature, penalties and top-k change what is sampled and Completion.Logprobs, not the model's own numbers.
        var o = new SamplingOptions { Temperature = 1.7, TopK = 20, PresencePenalty = 0.9, FrequencyPenalty = 0.3, MaxNewTokens = 16, Seed = 5, TopLogprobs = 4 };
        var reported = new List<SampledToken>();
        var completions = NewSampler().Generate(Prompts, o, onSampled: reported.Add);
        for (int i = 0; i < Prompts.Length; i++)
        {
            var mine = reported.Where(t => t.Row == i).Take(completions[i].NewIds.Length).ToList();
            Assert.Equal(completions[i].NewIds, mine.Select(t => t.Id));
            var expected = PenalisedGreedy.ModelLogprobs(Stories.Value, Prompts[i], completions[i].NewIds);
            for (int t = 0; t < mine.Count; t++)
            {
                Assert.InRange(mine[t].ModelLogprob - expected[t], -1e-4f, 1e-4f);
                Assert.Equal(4, mine[t].Top.Count);
                Assert.True(mine[t].Top.Zip(mine[t].Top.Skip(1)).All(p => p.First.Logprob >= p.Second.Logprob), "top_logprobs must be sorted");
                Assert.True(mine[t].ModelLogprob <= mine[t].Top[0].Logprob + 1e-6f);
            }
            // The sampling distribution (temperature 1.7, penalties) is not the model's: at least one token differs.
            Assert.Contains(Enumerable.Range(0, mine.Count), t => Math.Abs(completions[i].Logprobs[t] - mine[t].ModelLogprob) > 1e-3);
        }
        // Top-1 is the argmax of the model's log-softmax at the first step, computed separately.
        using var _ = no_grad();
        var first = Stories.Value.Forward(tensor(Prompts[1].Select(x => (long)x).ToArray(), [1, Prompts[1].Length])).log_softmax(-1)[0, -1];
        var top = first.topk(4);
        var firstRow1 = reported.First(t => t.Row == 1);
        Assert.Equal(top.indexes.data<long>().Select(x => (int)x), firstRow1.Top.Select(x => x.Id));
        Assert.InRange(firstRow1.Top[0].Logprob - top.values[0].item<float>(), -1e-4f, 1e-4f);
    }

    [Theory]
    [InlineData(2.5, 0.0)]
    [InlineData(0.0, -2.01)]
    public void Penalties_outside_minus_2_to_2_are_refused(double presence, double frequency)
    {
        var o = new SamplingOptions { PresencePenalty = presence, FrequencyPenalty = frequency };
        var error = Assert.Throws<RlhfException>(o.Validate);
        Assert.Contains(presence != 0 ? "presence_penalty" : "frequency_penalty", error.Message);
    }
}
