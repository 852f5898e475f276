using System.Text.Json.Serialization;

namespace RlhfSharp.Reporting;

/// <summary>
/// The gold of one policy minus another's on the same prompts, paired by prompt. Two best-of-n picks from the very same
/// candidates (the process reward model's and the outcome RM's) share most of their variance through the prompt, so the
/// interval of the per-prompt differences answers "does A beat B" where two overlapping marginal intervals cannot.
/// </summary>
public sealed record PairedDifference
{
    /// <summary>Mean over prompts of gold(A) − gold(B).</summary>
    [JsonPropertyName("mean")] public double Mean { get; init; }
    /// <summary>Normal-approximation 95% interval of that mean, as <see cref="PolicyScore.MeanAndCi"/> for the marginal ones.</summary>
    [JsonPropertyName("ci95")] public double[] Ci95 { get; init; } = [0, 0];
    [JsonPropertyName("prompts")] public int Prompts { get; init; }
    /// <summary>Prompts where A scored more gold, where it scored less, and where the two scored the same (usually the same pick).</summary>
    [JsonPropertyName("wins")] public int Wins { get; init; }
    [JsonPropertyName("losses")] public int Losses { get; init; }
    [JsonPropertyName("ties")] public int Ties { get; init; }

    public static PairedDifference Compute(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count != b.Count || a.Count == 0) throw new ArgumentException($"paired scores need the same non-zero count, got {a.Count} and {b.Count}.");
        var d = a.Zip(b, (x, y) => x - y).ToList();
        var (mean, ci) = PolicyScore.MeanAndCi(d);
        return new PairedDifference { Mean = mean, Ci95 = ci, Prompts = d.Count, Wins = d.Count(x => x > 0), Losses = d.Count(x => x < 0), Ties = d.Count(x => x == 0) };
    }
}
