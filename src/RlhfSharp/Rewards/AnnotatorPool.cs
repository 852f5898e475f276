namespace RlhfSharp.Rewards;

/// <summary>How the simulated annotator pool is built.</summary>
public sealed record AnnotatorPoolConfig
{
    /// <summary>Number of annotators; each judgement goes to one of them at random (InstructGPT hired about 40).</summary>
    public int Annotators { get; init; } = 8;

    /// <summary>
    /// τ of every annotator, in gold points. The default is <see cref="AnnotatorPool.Calibrate"/> on 48 pairs of base samples
    /// scored by the default <see cref="GoldRubricConfig"/> (0.1545; their gold has a spread of about 0.15). Calibrate on
    /// the pairs you will label when the rubric or the policy differ.
    /// </summary>
    public double Temperature { get; init; } = 0.15;

    /// <summary>
    /// Standard deviation of the annotators' personal length bias (gold points per 100 words, drawn once per annotator).
    /// 0 (the default) makes every annotator judge by the gold alone, so calibration is exact.
    /// </summary>
    public double LengthBiasStd { get; init; }

    /// <summary>Seeds the pool (which annotator answers) and, through it, every annotator.</summary>
    public int Seed { get; init; }
}

/// <summary>
/// Simulated human feedback: a pool of <see cref="SimulatedAnnotator"/>s that judge responses by the hidden gold score
/// (normally a <see cref="GoldRubric"/>) with Bradley–Terry / Plackett–Luce noise. Reproducible: the same config seed
/// and the same calls give the same labels.
/// </summary>
/// <remarks>
/// Calibration target: InstructGPT's labellers agreed with each other on 72.6 ± 1.5% of comparisons (Ouyang et al. 2022,
/// §5.1). Here τ is set so that an annotator agrees with the gold ordering that often (<see cref="Calibrate"/>).
/// Two annotators, each right with probability p on a pair, then agree with each other with probability p² + (1 − p)²,
/// which is lower (≈ 0.61 at p = 0.73 when p is the same for every pair); we match the gold agreement because the gold
/// is what the pipeline grades against.
/// </remarks>
public sealed class AnnotatorPool
{
    readonly IRewardFunction gold;
    readonly Random pick;
    readonly SimulatedAnnotator[] annotators;

    public AnnotatorPool(IRewardFunction gold, AnnotatorPoolConfig? config = null)
    {
        this.gold = gold;
        Config = config ?? new AnnotatorPoolConfig();
        if (Config.Annotators < 1) throw new RlhfException($"the annotator pool needs at least one annotator, got {Config.Annotators}.");
        pick = new Random(Config.Seed);
        annotators = new SimulatedAnnotator[Config.Annotators];
        for (int i = 0; i < annotators.Length; i++)
        {
            double bias = Config.LengthBiasStd == 0 ? 0 : Config.LengthBiasStd * StandardNormal(pick);
            annotators[i] = new SimulatedAnnotator(i, Config.Temperature, bias, pick.Next());
        }
    }

    public AnnotatorPoolConfig Config { get; }
    public IReadOnlyList<SimulatedAnnotator> Annotators => annotators;

    /// <summary>The annotator who answers the next judgement.</summary>
    SimulatedAnnotator Next() => annotators[pick.Next(annotators.Length)];

    /// <summary>Which of two responses to <paramref name="prompt"/> is preferred: 0 for <paramref name="a"/>, 1 for <paramref name="b"/>.</summary>
    public int ChoosePair(string prompt, string a, string b) => ChoosePairs([prompt], [a], [b])[0];

    /// <summary><see cref="ChoosePair"/> for many pairs, with one batched gold scoring.</summary>
    public int[] ChoosePairs(IReadOnlyList<string> prompts, IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        if (a.Count != prompts.Count || b.Count != prompts.Count)
            throw new RlhfException($"{prompts.Count} prompts, {a.Count} first and {b.Count} second responses: give one pair per prompt.");
        var scores = gold.Score([.. prompts, .. prompts], [.. a, .. b]);
        var choices = new int[prompts.Count];
        for (int i = 0; i < choices.Length; i++)
        {
            var annotator = Next();
            choices[i] = annotator.Choose(annotator.Utility(scores[i], a[i]), annotator.Utility(scores[prompts.Count + i], b[i]));
        }
        return choices;
    }

    /// <summary>A ranking of <paramref name="responses"/>, best first (indices into the list), by one annotator.</summary>
    public int[] Rank(string prompt, IReadOnlyList<string> responses)
    {
        var annotator = Next();
        return annotator.Rank(Utilities(annotator, prompt, responses));
    }

    /// <summary>The index of the candidate one annotator likes best (for best-of-n demonstrations).</summary>
    public int PickBest(string prompt, IReadOnlyList<string> candidates)
    {
        var annotator = Next();
        return annotator.PickBest(Utilities(annotator, prompt, candidates));
    }

    double[] Utilities(SimulatedAnnotator annotator, string prompt, IReadOnlyList<string> responses)
    {
        if (responses.Count == 0) throw new RlhfException("no responses to judge.");
        var scores = gold.Score(Enumerable.Repeat(prompt, responses.Count).ToArray(), responses);
        return scores.Select((g, i) => annotator.Utility(g, responses[i])).ToArray();
    }

    /// <summary>
    /// Judges pairs given by their gold scores and returns the fraction of choices that agree with the gold ordering
    /// (pairs with equal gold are skipped). Length bias is not applied: there is no text.
    /// </summary>
    public double GoldAgreement(IReadOnlyList<(double A, double B)> goldPairs)
    {
        int agree = 0, counted = 0;
        foreach (var (ga, gb) in goldPairs)
        {
            if (ga == gb) continue;
            counted++;
            if (Next().Choose(ga, gb) == (ga > gb ? 0 : 1)) agree++;
        }
        if (counted == 0) throw new RlhfException("every pair has equal gold scores: agreement is undefined.");
        return (double)agree / counted;
    }

    /// <summary>
    /// The probability that a Bradley–Terry annotator with temperature τ agrees with the gold ordering, averaged over
    /// the pairs: mean of σ(|g_a − g_b| / τ) over pairs with different gold.
    /// </summary>
    public static double ExpectedAgreement(IReadOnlyList<(double A, double B)> goldPairs, double temperature)
    {
        var gaps = Gaps(goldPairs);
        return temperature == 0 ? 1 : gaps.Average(d => SimulatedAnnotator.Sigmoid(d / temperature));
    }

    /// <summary>
    /// The temperature τ at which <see cref="ExpectedAgreement"/> over <paramref name="goldPairs"/> equals
    /// <paramref name="targetAgreement"/>, found by bisection on log τ (agreement falls monotonically from 1 at τ → 0
    /// to ½ at τ → ∞). Default target 0.73: InstructGPT's inter-annotator agreement (Ouyang et al. 2022, §5.1).
    /// </summary>
    public static double Calibrate(IReadOnlyList<(double A, double B)> goldPairs, double targetAgreement = 0.73)
    {
        if (!(targetAgreement > 0.5 && targetAgreement < 1))
            throw new RlhfException($"target agreement must be in (0.5, 1), got {targetAgreement}.");
        var gaps = Gaps(goldPairs);
        double typical = gaps.Average();
        double lo = Math.Log(typical * 1e-6), hi = Math.Log(typical * 1e6);
        for (int i = 0; i < 200 && hi - lo > 1e-12; i++)
        {
            double mid = 0.5 * (lo + hi);
            double agreement = gaps.Average(d => SimulatedAnnotator.Sigmoid(d / Math.Exp(mid)));
            if (agreement > targetAgreement) lo = mid; else hi = mid;
        }
        return Math.Exp(0.5 * (lo + hi));
    }

    static double[] Gaps(IReadOnlyList<(double A, double B)> goldPairs)
    {
        var gaps = goldPairs.Where(p => p.A != p.B).Select(p => Math.Abs(p.A - p.B)).ToArray();
        if (gaps.Length == 0) throw new RlhfException("every pair has equal gold scores: there is nothing to calibrate on.");
        if (gaps.Any(d => !double.IsFinite(d))) throw new RlhfException("a gold score is not finite.");
        return gaps;
    }

    // Box–Muller from the pool's own generator (no global state).
    static double StandardNormal(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
}
