using RlhfSharp.Models.T5;

namespace RlhfSharp.Pipeline;

/// <summary>
/// <see cref="PolicyEvaluator"/> for encoder-decoder policies: one sample per held-out prompt from
/// <see cref="Seq2SeqSampler.Rollouts"/>, the decoded continuation scored by the same gold rubric and by the same
/// decoder-only proxy RM on (prompt with BOS) + continuation tokens + EOS, the form it scores the decoder-only samples in
/// (<see cref="RewardModelInput.OfRollouts"/>); the KL is to the T5 SFT model (<see cref="KlToReference.PerSample(T5ForConditionalGeneration, T5ForConditionalGeneration, SampleBatch)"/>).
/// </summary>
public sealed class Seq2SeqPolicyEvaluator(ITokenizer tokenizer, IRewardFunction gold, ScoreModel rm, Func<string, int[]> rmPrompt)
{
    const int BatchSize = 32;
    public IProgress<TrainingProgress>? Progress { get; init; }

    /// <param name="prompts">The held-out prompts as text (what gold and the RM read).</param>
    /// <param name="encoderInputs">The same prompts as the T5's encoder reads them.</param>
    public PolicyEvaluation Sample(string name, T5ForConditionalGeneration policy, T5ForConditionalGeneration sft, List<string> prompts,
        List<int[]> encoderInputs, SamplingOptions options, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        int eos = tokenizer.EosId ?? throw new RlhfException("the tokenizer has no EOS id.");
        var sampler = new Seq2SeqSampler(policy, tokenizer);
        var texts = new List<string>();
        var proxy = new List<double>();
        var kl = new List<double>();
        for (int start = 0; start < encoderInputs.Count; start += BatchSize)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var chunk = encoderInputs.Skip(start).Take(BatchSize).ToList();
            using var batch = sampler.Rollouts(chunk, options with { Seed = options.Seed + (ulong)start }, cancel);
            texts.AddRange(batch.NewTokens.Select(t => tokenizer.Decode(t)));
            var sequences = batch.NewTokens.Select((t, i) => RewardModelInput.EndWithEos([.. rmPrompt(prompts[start + i]), .. t], eos, tokenizer.EosIds)).ToList();
            proxy.AddRange(Rewards(sequences).Select(x => (double)x));
            kl.AddRange(KlToReference.PerSampleValues(policy, sft, batch));
            Progress?.Report(new TrainingProgress($"eval {name}", start + chunk.Count, encoderInputs.Count, new Dictionary<string, double>()));
        }
        return PolicyEvaluator.Result(texts, gold.Score(prompts, texts), proxy.ToArray(), kl.ToArray(), clock.Elapsed.TotalSeconds);
    }

    /// <summary>The RM's (normalised) rewards of left-padded sequences, as the decoder-only evaluator's rollouts are laid out.</summary>
    float[] Rewards(List<int[]> sequences)
    {
        int width = sequences.Max(s => s.Length), pad = tokenizer.PadId ?? 0;
        var ids = new long[sequences.Count * width];
        var mask = new long[sequences.Count * width];
        for (int i = 0; i < sequences.Count; i++)
            for (int j = 0; j < width; j++)
            {
                int k = j - (width - sequences[i].Length);
                ids[i * width + j] = k >= 0 ? sequences[i][k] : pad;
                mask[i * width + j] = k >= 0 ? 1 : 0;
            }
        var device = rm.parameters().First().device;
        return rm.Rewards(tensor(ids, [sequences.Count, width], device: device), tensor(mask, [sequences.Count, width], device: device)).cpu().data<float>().ToArray();
    }
}
