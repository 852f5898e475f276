using RlhfSharp.Distributed;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>AdamW over a module's trainable parameters, one step at a time, with the learning-rate schedule and clipping.</summary>
public sealed class Optimizer : IDisposable
{
    readonly AdamW adam = null!;
    /// <summary>ZeRO-1 under mpirun (<see cref="OptimizerConfig.ZeroStage"/>): this rank's slice of the moments; null otherwise.</summary>
    readonly ZeroRedundancyAdamW? zero;
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
        schedule = new LearningRateSchedule(config, totalSteps);
        // One process is one rank holding every slice: plain AdamW is that, without the copies.
        if (config.ZeroStage == 1 && DataParallel.World is { } world)
        {
            if (config.MomentumDtype is not null || config.VarianceDtype is not null)
                throw new RlhfException("optimizer.zero_stage 1 keeps the moments in the parameters' dtype: leave momentum_dtype and variance_dtype unset, or set zero_stage 0.");
            zero = new ZeroRedundancyAdamW(decay, plain, config.LearningRate, config.Beta1, config.Beta2, config.Eps, config.WeightDecay, world);
            return;
        }
        var groups = new List<TorchSharp.Modules.AdamW.ParamGroup>();
        if (decay.Length > 0) groups.Add(new(decay, config.LearningRate, config.Beta1, config.Beta2, config.Eps, config.WeightDecay, false, false));
        if (plain.Length > 0) groups.Add(new(plain, config.LearningRate, config.Beta1, config.Beta2, config.Eps, 0.0, false, false));
        adam = new AdamW(groups, Dtype(config.MomentumDtype), Dtype(config.VarianceDtype));
    }

    public double LearningRate => schedule.At(Step);

    public void ZeroGrad()
    {
        if (zero is null) adam.zero_grad();
        else zero.ZeroGrad();
    }

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
        if (zero is not null) return ApplySharded(loss);
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
        if (SkippedNonFinite(norm, loss)) return norm;
        adam.step();
        EndStep();
        return norm;
    }

    /// <summary>
    /// <see cref="Apply"/> under ZeRO-1: the gradients reduce-scattered, one global norm for every rank (so all clip and
    /// skip alike), AdamW on this rank's slice, then the slices all-gathered. Clipping is torch's clip_grad_norm_ rule,
    /// max_norm / (norm + 1e-6) when that is below 1.
    /// </summary>
    double ApplySharded(double? loss)
    {
        double norm = zero!.ReduceGradients();
        zero.SetLearningRate(schedule.At(Step));
        if (SkippedNonFinite(norm, loss)) return norm;
        if (Config.MaxGradNorm > 0 && Config.MaxGradNorm / (norm + 1e-6) is var coef && coef < 1) zero.ScaleGradients(coef);
        zero.StepSlice();
        zero.GatherWeights();
        EndStep();
        return norm;
    }

    /// <summary>Skips a step whose gradient norm or loss is not finite (weights and moments untouched), and stops a run that keeps doing so.</summary>
    bool SkippedNonFinite(double norm, double? loss)
    {
        if (double.IsFinite(norm) && (loss is not double l || double.IsFinite(l)))
        {
            nonFiniteInARow = 0;
            return false;
        }
        ZeroGrad();
        SkippedSteps++;
        Step++;
        if (++nonFiniteInARow >= Config.MaxNonFiniteSteps)
            throw new RlhfException($"the loss or gradient was NaN or infinite for {nonFiniteInARow} steps in a row (step {Step}): the run is diverging; lower the learning rate or check the data.");
        return true;
    }

    void EndStep()
    {
        ZeroGrad();
        Step++;
        // Dispose scopes free every tensor, but TorchSharp's other native handles (scalars made from C# numbers,
        // among others) are released only by finalizers. Left to the GC's own pace, RSS climbed ~40% over the first
        // 250 steps of stories260K before the first collection; a gen-0 collection every 50 steps keeps it flat
        // (bench/run.sh, rss row) and costs nothing measurable.
        if (Step % 50 == 0) GC.Collect(0);
    }

    double GradNorm() => parameters.Where(p => p.grad is not null)
        .Select(p => p.grad!.square().sum()).Aggregate((a, b) => a + b).sqrt().item<float>();

    /// <summary>
    /// Under ZeRO-1, every rank's slice of the moments gathered whole on rank 0 for <see cref="Save"/> (null on the other
    /// ranks and without ZeRO). Every rank must call it, before rank 0 alone writes the checkpoint.
    /// </summary>
    public ZeroRedundancyAdamW.Whole? GatherState() => zero?.Gather();

    /// <summary>Optimizer moments, step and skipped-step counters, for resume.</summary>
    /// <param name="gathered">Under ZeRO-1, what <see cref="GatherState"/> returned on rank 0.</param>
    public void Save(string path, ZeroRedundancyAdamW.Whole? gathered = null)
    {
        if (zero is not null && gathered is null) throw new InvalidOperationException("a ZeRO-1 optimizer saves what GatherState gathered on rank 0.");
        string tmp = path + ".tmp";
        using (var w = new BinaryWriter(File.Create(tmp)))
        {
            w.Write(Step);
            w.Write(SkippedSteps);
            w.Write(nonFiniteInARow);
            if (gathered is not null) ZeroRedundancyAdamW.Write(w, gathered);
            else adam.save_state_dict(w);
        }
        File.Move(tmp, path, overwrite: true);
    }

    public void Load(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        Step = r.ReadInt32();
        SkippedSteps = r.ReadInt32();
        nonFiniteInARow = r.ReadInt32();
        // Both layouts begin with a name (TorchSharp writes its optimizer's type name): a sharded state (whole on disk)
        // resumes sharded at any number of ranks; each layout resumes only the zero_stage that wrote it.
        long start = r.BaseStream.Position;
        bool savedSharded = r.ReadString() == ZeroRedundancyAdamW.Marker;
        if (savedSharded != zero is not null)
            throw new RlhfException($"{path}: the optimizer state was saved {(savedSharded ? "sharded (optimizer.zero_stage 1 under mpirun)" : "whole (zero_stage 0, or one process)")} but this run's is {(zero is null ? "whole" : "sharded")}: resume with the zero_stage and launch that wrote it.");
        if (zero is not null)
        {
            zero.Read(r, path);
            return;
        }
        r.BaseStream.Position = start;
        // A resumed run whose moment dtypes were changed (momentum_dtype, variance_dtype) cannot read the saved moments.
        try { adam.load_state_dict(r); }
        catch (ArgumentException e) when (e.Message.Contains("Mismatched tensor data types"))
        {
            throw new RlhfException($"{path}: the optimizer state was saved with other moment dtypes than momentum_dtype = {Config.MomentumDtype?.ToString() ?? "the parameters'"}, variance_dtype = {Config.VarianceDtype?.ToString() ?? "the parameters'"}; resume with the dtypes the run started with.");
        }
    }

    static ScalarType? Dtype(MomentDtype? d) => d switch { MomentDtype.Float32 => ScalarType.Float32, MomentDtype.Bfloat16 => ScalarType.BFloat16, _ => null };

    /// <summary>The bytes AdamW's moments take (bfloat16 moments halve them).</summary>
    public long StateBytes => zero?.StateBytes ?? adam.StateBytes;

    public void Dispose()
    {
        adam?.Dispose();
        zero?.Dispose();
    }
}
