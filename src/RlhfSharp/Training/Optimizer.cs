using RlhfSharp.Distributed;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>AdamW over a module's trainable parameters, one step at a time, with the learning-rate schedule and clipping.</summary>
public sealed class Optimizer : IDisposable
{
    readonly AdamW adam;
    readonly Parameter[] parameters;
    readonly LearningRateSchedule schedule;

    public OptimizerConfig Config { get; }
    /// <summary>Optimizer steps taken so far.</summary>
    public int Step { get; private set; }

    public Optimizer(IEnumerable<Parameter> trainable, OptimizerConfig config, int totalSteps)
    {
        Config = config;
        // Deduplicate by storage: a shared tensor registered twice would be stepped twice (STYLE.md, tied embeddings).
        parameters = trainable.Where(p => p.requires_grad).DistinctBy(p => p.Handle).ToArray();
        if (parameters.Length == 0) throw new RlhfException("nothing to train: every parameter is frozen.");
        // Decay matrices only: biases, norm gains and other vectors are left alone (nanoGPT, TRL).
        var decay = parameters.Where(p => p.dim() >= 2).ToArray();
        var plain = parameters.Where(p => p.dim() < 2).ToArray();
        var groups = new List<TorchSharp.Modules.AdamW.ParamGroup>();
        if (decay.Length > 0) groups.Add(new(decay, config.LearningRate, config.Beta1, config.Beta2, config.Eps, config.WeightDecay, false, false));
        if (plain.Length > 0) groups.Add(new(plain, config.LearningRate, config.Beta1, config.Beta2, config.Eps, 0.0, false, false));
        adam = new AdamW(groups, Dtype(config.MomentumDtype), Dtype(config.VarianceDtype));
        schedule = new LearningRateSchedule(config, totalSteps);
    }

    public double LearningRate => schedule.At(Step);

    public void ZeroGrad() => adam.zero_grad();

    /// <summary>Optimizer steps skipped because the loss or the gradient was not finite (logged by the trainers as <c>skipped_steps</c>).</summary>
    public int SkippedSteps { get; private set; }
    int nonFiniteInARow;
    GradientAllReduce? allReduce;

    /// <summary>
    /// Clips, steps and advances the schedule. Returns the gradient norm before clipping; a non-finite norm or
    /// <paramref name="loss"/> skips the update (see <see cref="OptimizerConfig.MaxNonFiniteSteps"/>).
    /// </summary>
    /// <param name="loss">The step's loss when the caller has it: an infinite loss can come with finite (even zero) gradients.</param>
    public double Apply(double? loss = null)
    {
        // Data parallel (mpirun): the gradient of the global batch is the sum of the ranks' shares, taken before clipping
        // so every rank clips, skips and steps on the same numbers and the weights stay identical.
        if (DataParallel.World is { Size: > 1 } world) (allReduce ??= new GradientAllReduce(world)).Sum(parameters);
        foreach (var g in adam.ParamGroups) g.LearningRate = schedule.At(Step);
        double norm;
        using (NewDisposeScope())
        {
            norm = Config.MaxGradNorm > 0
                ? nn.utils.clip_grad_norm_(parameters, Config.MaxGradNorm)
                : GradNorm();
        }
        if (!double.IsFinite(norm) || loss is double l && !double.IsFinite(l))
        {
            adam.zero_grad();
            SkippedSteps++;
            Step++;
            if (++nonFiniteInARow >= Config.MaxNonFiniteSteps)
                throw new RlhfException($"the loss or gradient was NaN or infinite for {nonFiniteInARow} steps in a row (step {Step}): the run is diverging; lower the learning rate or check the data.");
            return norm;
        }
        nonFiniteInARow = 0;
        adam.step();
        adam.zero_grad();
        Step++;
        // Dispose scopes free every tensor, but TorchSharp's other native handles (scalars made from C# numbers,
        // among others) are released only by finalizers. Left to the GC's own pace, RSS climbed ~40% over the first
        // 250 steps of stories260K before the first collection; a gen-0 collection every 50 steps keeps it flat
        // (bench/run.sh, rss row) and costs nothing measurable.
        if (Step % 50 == 0) GC.Collect(0);
        return norm;
    }

    double GradNorm() => parameters.Where(p => p.grad is not null)
        .Select(p => p.grad!.square().sum()).Aggregate((a, b) => a + b).sqrt().item<float>();

    /// <summary>Optimizer moments, step and skipped-step counters, for resume.</summary>
    public void Save(string path)
    {
        string tmp = path + ".tmp";
        using (var w = new BinaryWriter(File.Create(tmp)))
        {
            w.Write(Step);
            w.Write(SkippedSteps);
            w.Write(nonFiniteInARow);
            adam.save_state_dict(w);
        }
        File.Move(tmp, path, overwrite: true);
    }

    public void Load(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        Step = r.ReadInt32();
        SkippedSteps = r.ReadInt32();
        nonFiniteInARow = r.ReadInt32();
        // A resumed run whose moment dtypes were changed (momentum_dtype, variance_dtype) cannot read the saved moments.
        try { adam.load_state_dict(r); }
        catch (ArgumentException e) when (e.Message.Contains("Mismatched tensor data types"))
        {
            throw new RlhfException($"{path}: the optimizer state was saved with other moment dtypes than momentum_dtype = {Config.MomentumDtype?.ToString() ?? "the parameters'"}, variance_dtype = {Config.VarianceDtype?.ToString() ?? "the parameters'"}; resume with the dtypes the run started with.");
        }
    }

    static ScalarType? Dtype(MomentDtype? d) => d switch { MomentDtype.Float32 => ScalarType.Float32, MomentDtype.Bfloat16 => ScalarType.BFloat16, _ => null };

    /// <summary>The bytes AdamW's moments take (bfloat16 moments halve them).</summary>
    public long StateBytes => adam.StateBytes;

    public void Dispose() => adam.Dispose();
}
