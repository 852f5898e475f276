using System.ComponentModel.DataAnnotations;
namespace RlhfSharp.Training;

/// <summary>How the weights move: AdamW, a warmup-then-decay schedule, gradient clipping and accumulation.</summary>
public sealed record OptimizerConfig
{
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double LearningRate { get; init; } = 1e-5;
    /// <summary>Decoupled weight decay (Loshchilov &amp; Hutter 2019), on matrices only (nanoGPT; TRL's default groups).</summary>
    [Range(0.0, double.MaxValue)]
    public double WeightDecay { get; init; } = 0.0;
    [Range(0.0, 1.0, MaximumIsExclusive = true)]
    public double Beta1 { get; init; } = 0.9;
    /// <summary>0.95 as InstructGPT/GPT-3 and OpenRLHF use, not Adam's 0.999.</summary>
    [Range(0.0, 1.0, MaximumIsExclusive = true)]
    public double Beta2 { get; init; } = 0.95;
    [Range(0.0, double.MaxValue, MinimumIsExclusive = true)]
    public double Eps { get; init; } = 1e-8;
    /// <summary>Global gradient-norm clip (1.0 in TRL, OpenRLHF and DeepSpeed-Chat); 0 disables.</summary>
    [Range(0.0, double.MaxValue)]
    public double MaxGradNorm { get; init; } = 1.0;
    [Range(1, int.MaxValue)]
    public int GradientAccumulation { get; init; } = 1;
    /// <summary>
    /// A step whose gradient norm is NaN or infinite is skipped (weights and moments untouched, like a GradScaler
    /// overflow step); this many in a row stop the run, since the model or the learning rate is then broken.
    /// </summary>
    [Range(1, int.MaxValue)]
    public int MaxNonFiniteSteps { get; init; } = 5;
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;
    /// <summary>Fraction of the steps spent warming up linearly (OpenRLHF's lr_warmup_ratio, 0.03).</summary>
    [Range(0.0, 1.0)]
    public double WarmupRatio { get; init; } = 0.03;
    /// <summary>The schedule decays to this fraction of the peak rate (OpenRLHF's min_lr = 0.1·lr).</summary>
    [Range(0.0, 1.0)]
    public double MinLearningRateRatio { get; init; } = 0.1;
    /// <summary>
    /// The dtype AdamW keeps its first moment in; null (the default) is the parameter's own, as PyTorch's AdamW
    /// (<c>zeros_like(p)</c>). bfloat16 halves its memory on float32 weights, as torchdistx's AnyPrecisionAdamW does
    /// (transformers' <c>optim="adamw_anyprecision"</c>).
    /// </summary>
    public MomentDtype? MomentumDtype { get; init; }
    /// <summary>The dtype of AdamW's second moment (uncentred variance); see <see cref="MomentumDtype"/>.</summary>
    public MomentDtype? VarianceDtype { get; init; }

    /// <summary>Bytes AdamW's two moments take per trainable parameter of <paramref name="elementSize"/> bytes.</summary>
    public int MomentBytes(int elementSize) => Size(MomentumDtype, elementSize) + Size(VarianceDtype, elementSize);

    static int Size(MomentDtype? dtype, int elementSize) => dtype switch { MomentDtype.Float32 => 4, MomentDtype.Bfloat16 => 2, _ => elementSize };
}

/// <summary>
/// The dtypes AdamW's moments may take. float16 is left out: its smallest normal number (6e-5) underflows the squared
/// gradients the variance averages, which bfloat16's float32 exponent range keeps.
/// </summary>
public enum MomentDtype { Float32, Bfloat16 }

public enum ScheduleKind { Constant, Linear, Cosine }
