namespace RlhfSharp.Training;

/// <summary>
/// What every stage's trainer reports to: the progress display and the metrics log (metrics.jsonl), both optional, which
/// it hands to its <see cref="StepLoop"/> or <see cref="RoundLoop"/>.
/// </summary>
public abstract class StageTrainer
{
    public IProgress<TrainingProgress>? Progress { get; init; }
    public MetricsLog? Metrics { get; init; }
}
