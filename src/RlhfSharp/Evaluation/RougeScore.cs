namespace RlhfSharp.Evaluation;

/// <summary>One ROUGE variant's precision, recall and F1 (rouge-score's <c>Score</c> tuple), each 0–1.</summary>
public sealed record RougeScore(double Precision, double Recall, double FMeasure)
{
    /// <summary>F1 = 2PR / (P + R), 0 when both are 0.</summary>
    public static RougeScore From(double precision, double recall) =>
        new(precision, recall, precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0);
}
