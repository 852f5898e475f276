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
            default:
                throw new RlhfException($"rope_scaling type '{scaling.Type}' is not supported (supported: linear, llama3).");
        }
    }
}
