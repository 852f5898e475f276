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
    [JsonPropertyName("samples")] public int Samples { get; init; }
    [JsonPropertyName("seconds")] public double Seconds { get; init; }

    public static (double Mean, double[] Ci95) MeanAndCi(IReadOnlyList<double> values)
    {
        double mean = values.Average();
        double sd = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : 0;
        double half = 1.96 * sd / Math.Sqrt(values.Count);
        return (mean, [mean - half, mean + half]);
    }
}
