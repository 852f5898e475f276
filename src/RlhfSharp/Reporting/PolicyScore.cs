using System.Text.Json.Serialization;

namespace RlhfSharp.Reporting;

/// <summary>How one policy did on the held-out prompts: gold and proxy reward, KL to the SFT model.</summary>
public sealed record PolicyScore
{
    [JsonPropertyName("gold_mean")] public double GoldMean { get; init; }
    /// <summary>Normal-approximation 95% interval of the mean: mean ± 1.96·s/√n.</summary>
    [JsonPropertyName("gold_ci95")] public double[] GoldCi95 { get; init; } = [0, 0];
    [JsonPropertyName("proxy_mean")] public double ProxyMean { get; init; }
    [JsonPropertyName("proxy_ci95")] public double[] ProxyCi95 { get; init; } = [0, 0];
    [JsonPropertyName("kl_to_sft")] public double KlToSft { get; init; }
    /// <summary>95% interval of the KL estimate (a point for best-of-n, whose KL is analytic).</summary>
    [JsonPropertyName("kl_ci95")] public double[] KlCi95 { get; init; } = [0, 0];
    [JsonPropertyName("samples")] public int Samples { get; init; }
    /// <summary>Seconds the evaluation of this policy took.</summary>
    [JsonPropertyName("seconds")] public double Seconds { get; init; }
    /// <summary>Wall time of the method's training stage (0 for policies that are not trained by a method).</summary>
    [JsonPropertyName("train_seconds")] public double TrainSeconds { get; init; }
    /// <summary>Policy token positions run forward per second of training (generation and loss passes, padding included).</summary>
    [JsonPropertyName("train_tokens_per_s")] public double TrainTokensPerSecond { get; init; }

    public static (double Mean, double[] Ci95) MeanAndCi(IReadOnlyList<double> values)
    {
        double mean = values.Average();
        double sd = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : 0;
        double half = 1.96 * sd / Math.Sqrt(values.Count);
        return (mean, [mean - half, mean + half]);
    }
}
