namespace RlhfSharp.Pipeline;

/// <summary>One policy's completions on the held-out prompts and their scores.</summary>
public sealed record PolicyEvaluation(PolicyScore Score, List<string> Texts, double[] Gold, double[] Proxy);

/// <summary>
/// Grades policies the same way: one sample per held-out prompt, scored by the hidden gold rubric and the proxy
/// RM (on prompt + completion + EOS, <see cref="RewardModelInput"/>), with the KL to the SFT model estimated on the samples themselves: mean over samples of
/// Σₜ log π(yₜ) − log π_SFT(yₜ) (an unbiased estimate of KL(π ‖ π_SFT) per sample).
/// </summary>
public sealed class PolicyEvaluator(ITokenizer tokenizer, IRewardFunction gold, ScoreModel rm, CausalLM sft)
{
    const int BatchSize = 32;
    public IProgress<TrainingProgress>? Progress { get; init; }

    public PolicyEvaluation Sample(string name, CausalLM policy, List<string> prompts, List<int[]> promptIds, SamplingOptions options, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        var (texts, proxy, kl) = Generate(policy, promptIds, options, name, cancel);
        var goldScores = gold.Score(prompts, texts);
        return Result(texts, goldScores, proxy, kl, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Best-of-n from the SFT model, picked by the proxy RM. Its KL to SFT is the analytic log n − (n−1)/n
    /// (Stiennon et al. 2020, App. G.3; Hilton &amp; Gao 2022), not a sample estimate.
    /// </summary>
    public PolicyEvaluation BestOfN(CausalLM sftPolicy, List<string> prompts, List<int[]> promptIds, int n, SamplingOptions options, CancellationToken cancel)
        => BestOfN(sftPolicy, prompts, promptIds, n, options, new Dictionary<string, Func<List<string>, List<string>, double[]>>(), cancel)[""];

    /// <summary>
    /// Best-of-n as above, and from the very same candidates the picks of each other judge in <paramref name="pickers"/>
    /// (name → scores of the flattened candidates, n per prompt), e.g. a process reward model's; the result under key ""
    /// is the proxy RM's pick. Each pick keeps the proxy RM's score of what it picked, so the proxy column stays comparable.
    /// </summary>
    public Dictionary<string, PolicyEvaluation> BestOfN(CausalLM sftPolicy, List<string> prompts, List<int[]> promptIds, int n, SamplingOptions options,
        IReadOnlyDictionary<string, Func<List<string>, List<string>, double[]>> pickers, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        var repeated = promptIds.SelectMany(p => Enumerable.Repeat(p, n)).ToList();
        var (texts, proxy, _) = Generate(sftPolicy, repeated, options with { Seed = options.Seed + 17 }, $"best_of_{n}", cancel);
        var sampling = clock.Elapsed.TotalSeconds;
        var result = new Dictionary<string, PolicyEvaluation> { [""] = Pick(proxy) };
        var flatPrompts = prompts.SelectMany(p => Enumerable.Repeat(p, n)).ToList();
        foreach (var (name, judge) in pickers)
        {
            clock.Restart();
            result[name] = Pick(judge(flatPrompts, texts), sampling);
        }
        return result;

        PolicyEvaluation Pick(double[] scores, double extraSeconds = 0)
        {
            var chosenTexts = new List<string>();
            var chosenProxy = new double[prompts.Count];
            for (int i = 0; i < prompts.Count; i++)
            {
                int best = Enumerable.Range(i * n, n).MaxBy(j => scores[j]);
                chosenTexts.Add(texts[best]);
                chosenProxy[i] = proxy[best];
            }
            var goldScores = gold.Score(prompts, chosenTexts);
            return Result(chosenTexts, goldScores, chosenProxy, [Math.Log(n) - (n - 1.0) / n], extraSeconds + clock.Elapsed.TotalSeconds);
        }
    }

    internal static PolicyEvaluation Result(List<string> texts, double[] goldScores, double[] proxy, double[] kl, double seconds)
    {
        var (g, gci) = PolicyScore.MeanAndCi(goldScores);
        var (p, pci) = PolicyScore.MeanAndCi(proxy);
        var (k, kci) = PolicyScore.MeanAndCi(kl);
        return new PolicyEvaluation(new PolicyScore
            {
                GoldMean = g, GoldCi95 = gci, ProxyMean = p, ProxyCi95 = pci, KlToSft = k, KlCi95 = kci, Samples = texts.Count, Seconds = seconds,
            },
            texts, goldScores, proxy);
    }

    (List<string> Texts, double[] Proxy, double[] Kl) Generate(CausalLM policy, List<int[]> promptIds, SamplingOptions options, string stage, CancellationToken cancel)
    {
        var sampler = new Sampler(policy, tokenizer);
        var texts = new List<string>();
        var proxy = new List<double>();
        var kl = new List<double>();
        for (int start = 0; start < promptIds.Count; start += BatchSize)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var chunk = promptIds.Skip(start).Take(BatchSize).ToList();
            var (ids, mask) = sampler.LeftPad(chunk);
            using var batch = sampler.Sample(ids, mask, options with { Seed = options.Seed + (ulong)start });
            texts.AddRange(batch.NewTokens.Select(t => tokenizer.Decode(t)));
            var (rmIds, rmMask) = RewardModelInput.OfRollouts(batch, tokenizer.EosId ?? throw new RlhfException("the tokenizer has no EOS id."), tokenizer.EosIds);
            proxy.AddRange(rm.Rewards(rmIds, rmMask).cpu().data<float>().ToArray().Select(x => (double)x));
            kl.AddRange(KlToReference.PerSampleValues(policy, sft, batch));
            Progress?.Report(new TrainingProgress($"eval {stage}", start + chunk.Count, promptIds.Count, new Dictionary<string, double>()));
        }
        return (texts, proxy.ToArray(), kl.ToArray());
    }
}
