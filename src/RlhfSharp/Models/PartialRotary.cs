using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// Rotary position embeddings on the first <see cref="Dims"/> dims of each head, the rest passing through: GPT-NeoX's
/// rotate_half layout (modeling_gpt_neox.py <c>apply_rotary_pos_emb</c>, the LLaMA convention on a prefix of the head)
/// and GPT-J's interleaved pairs (modeling_gptj.py <c>rotate_every_two</c>, sin/cos repeated per pair).
/// </summary>
public sealed class PartialRotary
{
    /// <summary>How the rotated dims pair up.</summary>
    public enum Layout
    {
        /// <summary>Dim i pairs with dim i + Dims/2 (GPT-NeoX, LLaMA).</summary>
        RotateHalf,
        /// <summary>Dim 2i pairs with dim 2i+1 (GPT-J, Mesh Transformer JAX).</summary>
        Interleaved,
    }

    readonly float[] inverseFrequencies;
    readonly Layout layout;

    /// <summary>The rotated prefix of each head.</summary>
    public int Dims { get; }

    public PartialRotary(int dims, double theta, Layout layout)
    {
        Dims = dims;
        this.layout = layout;
        inverseFrequencies = dims == 0 ? [] : RopeScaling.InverseFrequencies(dims, theta, null).Select(f => (float)f).ToArray();
    }

    /// <summary>cos and sin (B, T, 1, Dims) for <paramref name="positionIds"/> (B, T), in the activations' dtype.</summary>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positionIds, ScalarType dtype)
    {
        // HF computes the angles in float32 and casts cos/sin to the activations' dtype.
        var freqs = positionIds.to(float32).unsqueeze(-1) * tensor(inverseFrequencies, device: positionIds.device); // (B, T, Dims/2)
        var emb = (layout == Layout.RotateHalf ? cat([freqs, freqs], -1) : freqs.repeat_interleave(2L, -1)).unsqueeze(2);
        return (emb.cos().to(dtype), emb.sin().to(dtype));
    }

    /// <summary>Rotates the first <see cref="Dims"/> dims of <paramref name="x"/> (B, T, heads, head_dim).</summary>
    public Tensor Apply(Tensor x, (Tensor Cos, Tensor Sin) angles)
    {
        if (Dims == 0) return x;
        long headDim = x.shape[^1];
        var rot = Dims == headDim ? x : x.narrow(-1, 0, Dims);
        Tensor turned;
        if (layout == Layout.RotateHalf)
        {
            var halves = rot.chunk(2, -1);
            turned = cat([halves[1].neg(), halves[0]], -1);
        }
        else
        {
            // (a, b) → (−b, a) for each pair (x[2i], x[2i+1]).
            var even = rot.slice(-1, 0, Dims, 2);
            var odd = rot.slice(-1, 1, Dims, 2);
            turned = stack([odd.neg(), even], -1).flatten(-2);
        }
        var rotated = rot * angles.Cos + turned * angles.Sin;
        return Dims == headDim ? rotated : cat([rotated, x.narrow(-1, Dims, headDim - Dims)], -1);
    }
}
