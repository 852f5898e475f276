namespace RlhfSharp.Evaluation;

/// <summary>A reward model's scores of one ranked group, best response first, with the group's subset (RewardBench) if any.</summary>
/// <param name="Scores">Scores in the labelled order: <c>Scores[0]</c> is the response people ranked best.</param>
/// <param name="Subset">RewardBench's <c>subset</c> column (e.g. <c>alpacaeval-easy</c>); null when the file has none.</param>
public sealed record ScoredRanking(IReadOnlyList<double> Scores, string? Subset = null);

/// <summary>One row of the calibration table: pairs whose predicted P(first ≻ second) fell in [Lower, Upper).</summary>
/// <param name="Count">Pair orientations in the bin (each pair is counted in both orders, see <see cref="RewardModelAccuracy"/>).</param>
/// <param name="MeanPredicted">Mean of σ(margin) over the bin.</param>
/// <param name="Observed">Fraction of the bin's orientations whose first response was the preferred one.</param>
public sealed record CalibrationBin(double Lower, double Upper, int Count, double MeanPredicted, double Observed);

/// <summary>Accuracy over one subset's pairs.</summary>
public sealed record SubsetAccuracy(string Subset, int Pairs, double Accuracy, double MeanMargin);

/// <summary>What <see cref="RewardModelAccuracy.Compute"/> reports.</summary>
public sealed record RewardModelReport
{
    /// <summary>Ranked groups evaluated.</summary>
    public int Groups { get; init; }
    /// <summary>Ordered pairs: C(K,2) per group.</summary>
    public int Pairs { get; init; }
    /// <summary>Fraction of pairs whose better response scores strictly higher (a tie counts as wrong, as in RewardBench).</summary>
    public double Accuracy { get; init; }
    /// <summary>Pairs scored exactly equal (counted wrong); many ties usually mean truncation cut off both responses.</summary>
    public int Ties { get; init; }
    /// <summary>Mean of score(better) − score(worse) over the pairs.</summary>
    public double MeanMargin { get; init; }
    /// <summary>Per subset, in the order subsets first appear; empty when no group has one.</summary>
    public IReadOnlyList<SubsetAccuracy> BySubset { get; init; } = [];
    /// <summary>Groups with K ≥ 3 (K-wise rankings); 0 for a file of pairs.</summary>
    public int Rankings { get; init; }
    /// <summary>Pair accuracy over the C(K,2) pairs of the K ≥ 3 groups only.</summary>
    public double RankingPairAccuracy { get; init; } = double.NaN;
    /// <summary>Fraction of K ≥ 3 groups whose whole order the scores reproduce (strictly decreasing).</summary>
    public double RankingExactMatch { get; init; } = double.NaN;
    /// <summary>Fraction of K ≥ 3 groups whose best-ranked response gets the strictly highest score.</summary>
    public double RankingTop1 { get; init; } = double.NaN;
    /// <summary>Reliability table of σ(margin) in equal-width bins over [0, 1].</summary>
    public IReadOnlyList<CalibrationBin> Calibration { get; init; } = [];
    /// <summary>Expected calibration error: Σ_bins (count / total) · |observed − mean predicted|.</summary>
    public double ExpectedCalibrationError { get; init; }
}

/// <summary>
/// Reward-model evaluation on labelled rankings: pairwise accuracy and mean margin (RewardBench,
/// allenai/reward-bench <c>scripts/run_rm.py</c>: a pair is right when <c>score_chosen &gt; score_rejected</c>), the same per
/// <c>subset</c>, accuracy against K-wise rankings (all C(K,2) pairs, the order InstructGPT's loss is trained on, plus exact
/// order and top-1), and a calibration table of the Bradley–Terry probability P(a ≻ b) = σ(r_a − r_b).
/// </summary>
/// <remarks>
/// Calibration: a labelled pair only ever shows its preferred response winning, so each pair is counted in both orders,
/// (σ(m), preferred first: 1) and (σ(−m) = 1 − σ(m), preferred second: 0), as in the preference-model calibration plots of
/// Bai et al. 2022 (arXiv:2204.05862, §3, Fig. 9: predicted probability against the frequency it is right). A well-calibrated
/// RM then lies on the diagonal; the table is symmetric about 0.5 by construction.
/// </remarks>
public static class RewardModelAccuracy
{
    /// <param name="groups">Each group's scores, best first.</param>
    /// <param name="bins">Equal-width calibration bins over [0, 1] (10 in Bai et al.'s plots).</param>
    public static RewardModelReport Compute(IReadOnlyList<ScoredRanking> groups, int bins = 10)
    {
        if (groups.Count == 0) throw new RlhfException("reward-model evaluation: no ranked groups to evaluate.");
        if (bins < 1) throw new RlhfException($"reward-model evaluation: bins must be at least 1, got {bins}.");
        int pairs = 0, correct = 0, ties = 0;
        double marginSum = 0;
        var subsets = new List<string>();
        var bySubset = new Dictionary<string, (int Pairs, int Correct, double Margin)>();
        int rankings = 0, rankingPairs = 0, rankingCorrect = 0, exact = 0, top1 = 0;
        var binCount = new int[bins];
        var binPredicted = new double[bins];
        var binObserved = new double[bins];
        foreach (var g in groups)
        {
            var s = g.Scores;
            if (s.Count < 2) throw new RlhfException($"reward-model evaluation: a group has {s.Count} response(s); at least 2 are needed.");
            int groupPairs = 0, groupCorrect = 0;
            double groupMargin = 0;
            for (int i = 0; i < s.Count; i++)
                for (int j = i + 1; j < s.Count; j++)
                {
                    double m = s[i] - s[j];
                    groupPairs++;
                    groupMargin += m;
                    if (m > 0) groupCorrect++;
                    if (m == 0) ties++;
                    double p = Sigmoid(m);
                    AddToBin(p, 1);
                    AddToBin(1 - p, 0);
                }
            pairs += groupPairs; correct += groupCorrect; marginSum += groupMargin;
            if (g.Subset is string name)
            {
                if (!bySubset.TryGetValue(name, out var acc)) { subsets.Add(name); acc = (0, 0, 0); }
                bySubset[name] = (acc.Pairs + groupPairs, acc.Correct + groupCorrect, acc.Margin + groupMargin);
            }
            if (s.Count >= 3)
            {
                rankings++;
                rankingPairs += groupPairs; rankingCorrect += groupCorrect;
                if (groupCorrect == groupPairs) exact++;
                if (Enumerable.Range(1, s.Count - 1).All(k => s[0] > s[k])) top1++;
            }
        }
        var calibration = new List<CalibrationBin>();
        double ece = 0;
        int orientations = 2 * pairs;
        for (int b = 0; b < bins; b++)
        {
            int n = binCount[b];
            double predicted = n > 0 ? binPredicted[b] / n : double.NaN, observed = n > 0 ? binObserved[b] / n : double.NaN;
            calibration.Add(new CalibrationBin((double)b / bins, (double)(b + 1) / bins, n, predicted, observed));
            if (n > 0) ece += (double)n / orientations * Math.Abs(observed - predicted);
        }
        return new RewardModelReport
        {
            Groups = groups.Count, Pairs = pairs, Ties = ties, Accuracy = (double)correct / pairs, MeanMargin = marginSum / pairs,
            BySubset = subsets.Select(n => new SubsetAccuracy(n, bySubset[n].Pairs, (double)bySubset[n].Correct / bySubset[n].Pairs, bySubset[n].Margin / bySubset[n].Pairs)).ToList(),
            Rankings = rankings,
            RankingPairAccuracy = rankings > 0 ? (double)rankingCorrect / rankingPairs : double.NaN,
            RankingExactMatch = rankings > 0 ? (double)exact / rankings : double.NaN,
            RankingTop1 = rankings > 0 ? (double)top1 / rankings : double.NaN,
            Calibration = calibration, ExpectedCalibrationError = ece,
        };

        void AddToBin(double p, double outcome)
        {
            int b = Math.Min(bins - 1, (int)Math.Floor(p * bins));
            binCount[b]++; binPredicted[b] += p; binObserved[b] += outcome;
        }
    }

    /// <summary>
    /// Pair accuracy against another order of the same responses (e.g. the hidden gold rubric's): over every pair whose
    /// <paramref name="truth"/> values differ, the fraction the scores order the same way (strictly). Pairs tied in truth are
    /// left out: no order to agree with. NaN when there is no such pair.
    /// </summary>
    public static (double Accuracy, int Pairs) AgainstTruth(IReadOnlyList<IReadOnlyList<double>> scores, IReadOnlyList<IReadOnlyList<double>> truth)
    {
        if (scores.Count != truth.Count) throw new ArgumentException($"{scores.Count} score groups for {truth.Count} truth groups.");
        int pairs = 0, correct = 0;
        for (int g = 0; g < scores.Count; g++)
        {
            var s = scores[g];
            var t = truth[g];
            if (s.Count != t.Count) throw new ArgumentException($"group {g}: {s.Count} scores for {t.Count} truth values.");
            for (int i = 0; i < s.Count; i++)
                for (int j = i + 1; j < s.Count; j++)
                {
                    if (t[i] == t[j]) continue;
                    pairs++;
                    if (Math.Sign(s[i] - s[j]) == Math.Sign(t[i] - t[j])) correct++;
                }
        }
        return (pairs > 0 ? (double)correct / pairs : double.NaN, pairs);
    }

    static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));
}
