using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Lora;

/// <summary>
/// The LoRA update of one of our projections. Our q/k/v (and LLaMA's gate/up) are one fused matrix while HF and PEFT
/// see separate modules, so the adapter keeps one <see cref="LoraPair"/> per targeted HF module and adds its
/// (α/r)·B·A·dropout(x) into that module's rows of the fused output; untargeted rows pass through unchanged. This is
/// exactly PEFT's computation on the separate modules.
/// </summary>
public sealed class LoraAdapter : nn.Module
{
    /// <summary>One targeted HF module: its pair and where its rows sit in the fused output.</summary>
    public sealed record Slice(string HfModule, long Offset, long Rows, LoraPair Pair);

    readonly long[] segments;          // row counts of every HF module in the fused output, in order
    readonly LoraPair?[] pairs;        // the pair of each segment, or null where it is not targeted
    public IReadOnlyList<Slice> Slices { get; }
    public double Scaling { get; }
    /// <summary>Dropout on the adapter's input in train mode (PEFT <c>lora_dropout</c>); <see cref="LoraModel.DisableDropout"/> sets it to 0.</summary>
    public double Dropout { get; set; }

    /// <summary>False while the adapters are switched off (<see cref="LoraModel.AdaptersOff"/>): the projection is the base one.</summary>
    public bool Enabled { get; set; } = true;

    /// <param name="hfModules">The HF modules stacked in the fused projection, with their rows.</param>
    /// <param name="targeted">Which of them get a pair.</param>
    public LoraAdapter(long inFeatures, IReadOnlyList<(string HfModule, long Rows)> hfModules, IReadOnlySet<string> targeted,
        LoraConfig config, ScalarType dtype, Device device) : base(nameof(LoraAdapter))
    {
        segments = hfModules.Select(m => m.Rows).ToArray();
        pairs = new LoraPair?[segments.Length];
        var slices = new List<Slice>();
        long offset = 0;
        for (int i = 0; i < segments.Length; i++)
        {
            var (name, rows) = hfModules[i];
            if (targeted.Contains(name))
            {
                pairs[i] = new LoraPair(inFeatures, rows, config.R, dtype, device);
                // The registered name is the HF module's last part (q_proj, c_attn): readable in state files.
                register_module(name[(name.LastIndexOf('.') + 1)..], pairs[i]!);
                slices.Add(new Slice(name, offset, rows, pairs[i]!));
            }
            offset += rows;
        }
        Slices = slices;
        Scaling = config.Scaling;
        Dropout = config.Dropout;
    }

    /// <summary><paramref name="y"/> = the base projection of <paramref name="x"/>, plus the low-rank updates.</summary>
    public Tensor Add(Tensor x, Tensor y)
    {
        if (!Enabled) return y;
        if (pairs.Length == 1) return y + Update(x, pairs[0]!);
        var parts = y.split(segments, -1);
        for (int i = 0; i < pairs.Length; i++)
            if (pairs[i] is { } pair) parts[i] = parts[i] + Update(x, pair);
        return cat(parts, -1);
    }

    // PEFT draws a separate dropout mask for each adapted module, so each pair gets its own.
    Tensor Update(Tensor x, LoraPair pair)
    {
        var input = Dropout > 0 && training ? nn.functional.dropout(x, Dropout, training: true) : x;
        return nn.functional.linear(nn.functional.linear(input, pair.lora_A), pair.lora_B) * Scaling;
    }
}
