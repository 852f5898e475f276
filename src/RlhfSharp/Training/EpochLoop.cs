using RlhfSharp.Distributed;
using TorchSharp.Modules;

namespace RlhfSharp.Training;

/// <summary>
/// The <see cref="StepLoop"/> of the stages that train epochs over a fixed dataset (<see cref="EpochStageConfig"/>: SFT,
/// the preference family, ILQL, the process reward model, and their encoder-decoder forms; and the reward model, whose
/// batch is counted in prompts): a step takes <c>BatchSize · GradientAccumulation</c>
/// examples in seeded order, one optimizer over the trained parameters, and every such stage's row (epoch, its metrics,
/// grad_norm, skipped_steps, lr and a throughput). <see cref="RunMeans"/> is the whole step of the stages whose loss is a
/// mean over examples; SFT (a mean over tokens) and ILQL supply their own micro-batch loop to <see cref="Run"/>.
/// </summary>
public sealed class EpochLoop : IDisposable
{
    readonly string stage;
    readonly StageConfig config;
    readonly int batchSize;
    readonly int count;
    readonly IReadOnlyDictionary<string, nn.Module> modules;
    readonly Stopwatch clock = new();

    /// <param name="stage">The run sub-folder and progress label.</param>
    /// <param name="count">Examples in the training set.</param>
    /// <param name="modules">What a checkpoint saves; the first is the one the optimizer's state is saved under.</param>
    /// <param name="maxSteps">A cap on the steps the epochs give (ILQL's <c>total_steps</c>).</param>
    public EpochLoop(string stage, EpochStageConfig config, OptimizerConfig optimizer, int count, IEnumerable<Parameter> parameters,
        IReadOnlyDictionary<string, nn.Module> modules, int maxSteps = int.MaxValue)
        : this(stage, config, config.Epochs, config.BatchSize, optimizer, count, parameters, modules, maxSteps) { }

    /// <param name="epochs">Passes over the training set.</param>
    /// <param name="batchSize">Examples per micro-batch (the reward model's: prompts, each with all its ranked responses).</param>
    public EpochLoop(string stage, StageConfig config, int epochs, int batchSize, OptimizerConfig optimizer, int count, IEnumerable<Parameter> parameters,
        IReadOnlyDictionary<string, nn.Module> modules, int maxSteps = int.MaxValue)
    {
        this.stage = stage;
        this.config = config;
        this.batchSize = batchSize;
        this.count = count;
        this.modules = modules;
        PerStep = batchSize * optimizer.GradientAccumulation;
        StepsPerEpoch = (count + PerStep - 1) / PerStep;
        TotalSteps = Math.Min(StepsPerEpoch * epochs, maxSteps);
        Optimizer = new Optimizer(parameters, optimizer, TotalSteps);
    }

    public int PerStep { get; }
    public int StepsPerEpoch { get; }
    public int TotalSteps { get; }
    public Optimizer Optimizer { get; }
    public StageState? State { get; init; }
    public MetricsLog? Metrics { get; init; }
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>The held-out numbers, added to the row at each epoch's end; null without an eval set.</summary>
    public Func<Dictionary<string, double>>? Evaluate { get; init; }

    /// <summary>The example indices of step <paramref name="step"/>: a seeded shuffle per epoch, or the dataset's order when <paramref name="sequential"/>.</summary>
    public List<int> Batch(int step, bool sequential = false) => SeededOrder.EpochBatch(count, PerStep, step, config.Seed, sequential);

    /// <summary>Runs (or resumes) every step; returns the last row.</summary>
    public Dictionary<string, double> Run(Action<int, Dictionary<string, double>> step, CancellationToken cancel)
    {
        var loop = new StepLoop
        {
            Stage = stage, TotalSteps = TotalSteps, State = State, SaveEvery = config.SaveEvery, Metrics = Metrics, Progress = Progress,
            Modules = modules, Optimizers = new Dictionary<string, Optimizer> { [modules.Keys.First()] = Optimizer },
            StepsPerEpoch = StepsPerEpoch, Evaluate = Evaluate,
        };
        clock.Restart();
        return loop.Run(step, cancel);
    }

    /// <summary>
    /// Runs every step as the mean of micro-batch means: each rank takes its shard of the step's examples in micro-batches
    /// of <c>BatchSize</c>, one dispose scope each, whose mean loss is weighted by its share of the step (all ranks') so the
    /// gradient is the step's mean; the metrics are summed over the ranks before the optimizer step, so every rank sees the
    /// same loss and skips, or not, the same step. <paramref name="metricNames"/> lists every metric the micro step can return.
    /// </summary>
    public Dictionary<string, double> RunMeans(Func<IReadOnlyList<int>, (Tensor Loss, IReadOnlyDictionary<string, double> Metrics)> microStep,
        IReadOnlyList<string> metricNames, CancellationToken cancel, bool sequential = false) => Run((step, row) =>
    {
        var indices = Batch(step, sequential);
        var mine = DataParallel.Shard(indices);
        var sums = new MetricSums(metricNames);
        for (int m = 0; m < mine.Count; m += batchSize)
        {
            using var scope = NewDisposeScope();
            var micro = mine.Skip(m).Take(batchSize).ToList();
            var (loss, metrics) = microStep(micro);
            (loss * ((double)micro.Count / indices.Count)).backward();
            sums.Add(metrics, micro.Count);
        }
        sums = sums.AcrossRanks();
        double gradNorm = Optimizer.Apply(sums.Keys.Contains("loss") ? sums.Mean("loss") : (double?)null);
        EndStep(row, step, gradNorm, sums.Keys.Select(k => KeyValuePair.Create(k, sums.Mean(k))), "examples_per_s", indices.Count);
    }, cancel);

    /// <summary>
    /// Writes the step's row after its optimizer step: epoch, <paramref name="metrics"/>, grad_norm, skipped_steps, lr, and
    /// <paramref name="done"/> (examples or tokens) per second since the previous step's end as <paramref name="rateKey"/>.
    /// </summary>
    public void EndStep(Dictionary<string, double> row, int step, double gradNorm, IEnumerable<KeyValuePair<string, double>> metrics, string rateKey, double done)
    {
        row["epoch"] = (double)(step + 1) / StepsPerEpoch;
        foreach (var (k, v) in metrics) row[k] = v;
        row["grad_norm"] = gradNorm;
        row["skipped_steps"] = Optimizer.SkippedSteps;
        row["lr"] = Optimizer.LearningRate;
        row[rateKey] = done / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
        clock.Restart();
    }

    public void Dispose() => Optimizer.Dispose();
}
