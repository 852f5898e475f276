namespace RlhfSharp.Evaluation;

/// <summary>
/// A corpus BLEU score on sacreBLEU's 0–100 scale with the statistics it came from, so scores from several
/// runs can be checked against <c>sacrebleu</c>'s verbose signature line.
/// </summary>
/// <param name="Score">BLEU, 0–100.</param>
/// <param name="Precisions">Modified n-gram precisions (after smoothing), 0–100, one per order.</param>
/// <param name="BrevityPenalty">exp(1 − r/c) when the hypotheses are shorter than the references, else 1.</param>
/// <param name="HypothesisLength">Total hypothesis tokens c.</param>
/// <param name="ReferenceLength">Total effective (closest) reference tokens r.</param>
/// <param name="Matches">Clipped n-gram matches per order.</param>
/// <param name="Totals">Hypothesis n-grams per order.</param>
public sealed record BleuScore(double Score, double[] Precisions, double BrevityPenalty, long HypothesisLength, long ReferenceLength,
    long[] Matches, long[] Totals);
