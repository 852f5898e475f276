namespace RlhfSharp.Evaluation;

/// <summary>What <see cref="ProcessRewardAccuracy.Compute"/> reports.</summary>
/// <param name="Steps">Labelled steps scored (steps cut off by the maximum length are left out).</param>
/// <param name="StepAccuracy">Steps where P(good) ≥ 0.5 agrees with label ≥ 0.5 (TRL's <c>compute_accuracy</c>: argmax of two classes).</param>
/// <param name="MeanGoodScore">Mean P(good) over steps labelled good (≥ 0.5).</param>
/// <param name="MeanBadScore">Mean P(good) over steps labelled bad (&lt; 0.5).</param>
/// <param name="SolutionAccuracy">Completions whose "every step good" (all labels ≥ 0.5) the min over steps ≥ 0.5 predicts.</param>
public sealed record ProcessRewardReport(int Steps, double StepAccuracy, double MeanGoodScore, double MeanBadScore, int Solutions, double SolutionAccuracy);

/// <summary>A process reward model's step scores against step labels.</summary>
public static class ProcessRewardAccuracy
{
    /// <param name="scores">P(good) per scored step of each completion (may be shorter than its labels when truncated).</param>
    /// <param name="labels">The labels of each completion's steps, in [0, 1].</param>
    public static ProcessRewardReport Compute(IReadOnlyList<double[]> scores, IReadOnlyList<IReadOnlyList<double>> labels)
    {
        if (scores.Count != labels.Count) throw new ArgumentException($"{scores.Count} scored completions for {labels.Count} labelled ones.");
        int steps = 0, right = 0, good = 0, bad = 0, solutions = 0, solutionsRight = 0;
        double goodSum = 0, badSum = 0;
        for (int i = 0; i < scores.Count; i++)
        {
            var s = scores[i];
            for (int k = 0; k < s.Length; k++)
            {
                bool labelledGood = labels[i][k] >= 0.5;
                steps++;
                if ((s[k] >= 0.5) == labelledGood) right++;
                if (labelledGood) { good++; goodSum += s[k]; } else { bad++; badSum += s[k]; }
            }
            // Only completions scored to their last step say whether every step is good.
            if (s.Length == 0 || s.Length < labels[i].Count) continue;
            solutions++;
            if ((s.Min() >= 0.5) == labels[i].All(l => l >= 0.5)) solutionsRight++;
        }
        if (steps == 0) throw new RlhfException("process reward evaluation: no labelled step was scored.");
        return new ProcessRewardReport(steps, (double)right / steps, good > 0 ? goodSum / good : double.NaN, bad > 0 ? badSum / bad : double.NaN,
            solutions, solutions > 0 ? (double)solutionsRight / solutions : double.NaN);
    }
}
