using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models.T5;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Generation;

/// <summary>
/// The T5 sampler's options that the decoder-only sampler has (issue 19: "the sampler options work for this family as for
/// the others"): CTRL's repetition penalty as transformers applies it to an encoder-decoder (over the decoder's
/// <c>input_ids</c>: start token and new tokens, not the encoder prompt), OpenAI's presence/frequency penalties and
/// logit_bias, top_logprobs, and stop strings. The reference recomputes the whole decoder each step and applies each
/// definition on host arrays, with no sampler code.
/// </summary>
public class Seq2SeqSamplerOptionsTests
{
    static readonly Lazy<T5ForConditionalGeneration> Model = new(() => T5Checkpoint.Load(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated")));
    static readonly int[][] Prompts = [[83, 67, 35, 47, 10, 24], [87, 14, 70, 75, 28], [5, 5, 9, 1]];
    const int Eos = 1;

    /// <summary>Raw last-position logits of the decoder over <paramref name="decoderIds"/>, no cache.</summary>
    static float[] StepLogits(int[] prompt, List<int> decoderIds)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var ids = tensor(prompt.Select(x => (long)x).ToArray(), [1, prompt.Length]);
        var dec = tensor(decoderIds.Select(x => (long)x).ToArray(), [1, decoderIds.Count]);
        return Model.Value.Forward(ids, ones_like(ids), dec)[0, decoderIds.Count - 1].to(ScalarType.Float32).data<float>().ToArray();
    }

    static int[] ReferenceGreedy(int[] prompt, int maxNew, double repetition, double presence, double frequency, IReadOnlyDictionary<int, double>? bias = null)
    {
        var decoder = new List<int> { Model.Value.Config.DecoderStartTokenId };
        var counts = new Dictionary<int, int>();
        var result = new List<int>();
        for (int s = 0; s < maxNew; s++)
        {
            var logits = StepLogits(prompt, decoder).Select(x => (double)x).ToArray();
            foreach (var (id, b) in bias ?? new Dictionary<int, double>()) logits[id] += b;
            // transformers RepetitionPenaltyLogitsProcessor: every distinct token of input_ids (the decoder's, start included).
            foreach (var t in decoder.Distinct()) logits[t] = logits[t] < 0 ? logits[t] * repetition : logits[t] / repetition;
            for (int t = 0; t < logits.Length; t++)
            {
                int c = counts.GetValueOrDefault(t);
                logits[t] -= c * frequency + (c > 0 ? presence : 0);
            }
            int best = Array.IndexOf(logits, logits.Max());
            if (best == Eos) break;
            result.Add(best);
            decoder.Add(best);
            counts[best] = counts.GetValueOrDefault(best) + 1;
        }
        return [.. result];
    }

    [Theory]
    [InlineData(1.5, 0.0, 0.0)]
    [InlineData(0.7, 0.0, 0.0)]
    [InlineData(1.0, 1.5, 0.0)]
    [InlineData(1.0, 0.0, 1.0)]
    [InlineData(1.3, 0.5, 0.5)]
    public void Penalised_greedy_tokens_equal_the_definitions_on_the_decoder_tokens(double repetition, double presence, double frequency)
    {
        var o = new SamplingOptions { Temperature = 0, MaxNewTokens = 12, RepetitionPenalty = repetition, PresencePenalty = presence, FrequencyPenalty = frequency };
        var sampler = new Seq2SeqSampler(Model.Value);
        var batch = sampler.Generate(Prompts, o);
        var plain = sampler.Generate(Prompts, o with { RepetitionPenalty = 1, PresencePenalty = 0, FrequencyPenalty = 0 });
        for (int i = 0; i < Prompts.Length; i++)
            Assert.Equal(ReferenceGreedy(Prompts[i], 12, repetition, presence, frequency), batch[i].NewIds);
        // The penalty must have mattered somewhere, else the comparison proves nothing.
        Assert.Contains(Enumerable.Range(0, Prompts.Length), i => !plain[i].NewIds.SequenceEqual(batch[i].NewIds));
    }

    [Fact]
    public void Logit_bias_moves_the_greedy_tokens_as_its_definition()
    {
        var plain = new Seq2SeqSampler(Model.Value).Generate(Prompts, new SamplingOptions { Temperature = 0, MaxNewTokens = 6 });
        var bias = new Dictionary<int, double> { [plain[0].NewIds[0]] = -100, [42] = 3.0 };
        var biased = new Seq2SeqSampler(Model.Value).Generate(Prompts, new SamplingOptions { Temperature = 0, MaxNewTokens = 6, LogitBias = bias });
        for (int i = 0; i < Prompts.Length; i++) Assert.Equal(ReferenceGreedy(Prompts[i], 6, 1, 0, 0, bias), biased[i].NewIds);
        Assert.NotEqual(plain[0].NewIds[0], biased[0].NewIds[0]);
    }

    [Fact]
    public void Top_logprobs_are_the_decoders_raw_log_softmax_while_sampling_with_temperature_and_top_k()
    {
        var reported = new List<SampledToken>();
        var o = new SamplingOptions { Temperature = 0.7, TopK = 5, MaxNewTokens = 5, TopLogprobs = 4, Seed = 3, StopAtEos = false };
        var result = new Seq2SeqSampler(Model.Value).Generate([Prompts[0]], o, onSampled: reported.Add)[0];
        Assert.Equal(result.NewIds, reported.Select(t => t.Id));
        var decoder = new List<int> { Model.Value.Config.DecoderStartTokenId };
        foreach (var t in reported)
        {
            var logits = StepLogits(Prompts[0], decoder);
            double max = logits.Max(), lse = max + Math.Log(logits.Sum(x => Math.Exp(x - max)));
            var order = Enumerable.Range(0, logits.Length).OrderByDescending(j => logits[j]).Take(4).ToArray();
            Assert.Equal(order, t.Top.Select(x => x.Id));
            for (int j = 0; j < 4; j++) Assert.Equal(logits[order[j]] - lse, t.Top[j].Logprob, 4);
            Assert.Equal(logits[t.Id] - lse, t.ModelLogprob, 4);
            decoder.Add(t.Id);
        }
    }

    [Fact]
    public void A_stop_string_ends_the_row_and_is_cut_from_its_text()
    {
        var dir = Directory.CreateTempSubdirectory("rlhf-t5-stop-").FullName;
        try
        {
            using var t5 = PretrainedSeq2SeqModel.Load(Cli.Seq2SeqCliTests.T5Folder(dir));
            var sampler = new Seq2SeqSampler(t5.Model, t5.Tokenizer);
            var o = new SamplingOptions { Temperature = 0, MaxNewTokens = 8, StopAtEos = false };
            var full = sampler.Generate([Prompts[0]], o)[0];
            // Stop at the text of the third new token: the row ends there and the text stops before it.
            string stop = t5.Tokenizer.Decode([full.NewIds[2]]).Trim();
            Assert.False(string.IsNullOrEmpty(stop));
            var cut = sampler.Generate([Prompts[0]], o with { StopStrings = [stop] })[0];
            int at = full.Text.IndexOf(stop, StringComparison.Ordinal);
            Assert.Equal(full.Text[..at], cut.Text);
            Assert.Equal(FinishReason.Stop, cut.FinishReason);
            Assert.True(cut.NewIds.Length <= 3 && full.NewIds.Take(cut.NewIds.Length).SequenceEqual(cut.NewIds));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
