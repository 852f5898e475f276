namespace RlhfSharp.Training;

/// <summary>Linear warmup to the peak rate, then constant, linear or cosine decay to a floor.</summary>
public sealed record LearningRateSchedule(OptimizerConfig Config, int TotalSteps)
{
    public int WarmupSteps => (int)Math.Ceiling(Config.WarmupRatio * TotalSteps);

    /// <summary>The learning rate for optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(int step)
    {
        double peak = Config.LearningRate, floor = peak * Config.MinLearningRateRatio;
        if (step < WarmupSteps) return peak * (step + 1) / WarmupSteps;
        if (Config.Schedule == ScheduleKind.Constant || TotalSteps <= WarmupSteps) return peak;
        double progress = Math.Clamp((double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps - 1), 0, 1);
        return Config.Schedule switch
        {
            ScheduleKind.Linear => floor + (peak - floor) * (1 - progress),
            _ => floor + (peak - floor) * 0.5 * (1 + Math.Cos(Math.PI * progress)),
        };
    }
}
