namespace RlhfSharp.Models;

/// <summary>
/// HF <c>rope_scaling</c>: how a checkpoint stretches RoPE beyond its training length.
/// <c>linear</c> divides positions by <see cref="Factor"/> (Chen et al. 2023, position interpolation);
/// <c>llama3</c> rescales low frequencies and leaves high ones (Meta Llama 3.1, HF
/// <c>_compute_llama3_parameters</c>).
/// </summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192)
{
    /// <summary>Phi-3 <c>longrope</c>: per-frequency divisors below <see cref="OriginalMaxPositionEmbeddings"/> tokens.</summary>
    public double[]? ShortFactor { get; init; }
    /// <summary>Phi-3 <c>longrope</c>: per-frequency divisors once the sequence is longer than that.</summary>
    public double[]? LongFactor { get; init; }
    /// <summary>Phi-3 <c>longrope</c>: the model's <c>max_position_embeddings</c>, which sets <see cref="LongRopeAttentionFactor"/>.</summary>
    public int MaxPositionEmbeddings { get; init; }

    /// <summary>
    /// longrope's multiplier of cos and sin: sqrt(1 + ln(max/original) / ln(original)), 1 when the context is not
    /// extended (Phi3LongRoPEScaledRotaryEmbedding, transformers v4.44).
    /// </summary>
    public double LongRopeAttentionFactor
    {
        get
        {
            double scale = (double)MaxPositionEmbeddings / OriginalMaxPositionEmbeddings;
            return scale <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(scale) / Math.Log(OriginalMaxPositionEmbeddings));
        }
    }

    /// <summary>longrope's inverse frequencies θ^(-2i/d) / factor[i] with the long factors (<paramref name="longFactors"/>) or the short ones.</summary>
    public static double[] LongRopeFrequencies(int headDim, double theta, RopeScaling scaling, bool longFactors)
    {
        var inv = InverseFrequencies(headDim, theta, null);
        var factors = (longFactors ? scaling.LongFactor : scaling.ShortFactor)!;
        for (int i = 0; i < inv.Length; i++) inv[i] /= factors[i];
        return inv;
    }

    /// <summary>Inverse frequencies θ^(-2i/d) for i &lt; d/2, rescaled as this scaling says.</summary>
    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        var inv = new double[headDim / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = 1.0 / Math.Pow(theta, 2.0 * i / headDim);
        if (scaling is null) return inv;
        switch (scaling.Type)
        {
            case "linear":
                for (int i = 0; i < inv.Length; i++) inv[i] /= scaling.Factor;
                return inv;
            case "llama3":
                double lowWavelen = scaling.OriginalMaxPositionEmbeddings / scaling.LowFreqFactor;
                double highWavelen = scaling.OriginalMaxPositionEmbeddings / scaling.HighFreqFactor;
                for (int i = 0; i < inv.Length; i++)
                {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > lowWavelen) inv[i] /= scaling.Factor;
                    else if (wavelen >= highWavelen)
                    {
                        double smooth = (scaling.OriginalMaxPositionEmbeddings / wavelen - scaling.LowFreqFactor)
                                        / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                        inv[i] = (1 - smooth) * inv[i] / scaling.Factor + smooth * inv[i];
                    }
                }
                return inv;
            case "longrope" when scaling.ShortFactor is not null:
                return LongRopeFrequencies(headDim, theta, scaling, longFactors: false);
            default:
                throw new RlhfException($"rope_scaling type '{scaling.Type}' is not supported (supported: linear, llama3).");
        }
    }
}
