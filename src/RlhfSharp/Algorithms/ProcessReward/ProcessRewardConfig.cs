namespace RlhfSharp.Algorithms.ProcessReward;

/// <summary>
/// Process-reward-model training (Lightman et al. 2023, arXiv:2305.20050; TRL <c>trl/experimental/prm/prm_config.py</c>
/// at huggingface/trl@f2cd577): a two-class score at the last token of every step, which the step separator ends.
/// PRMConfig takes epochs, batch size (completions per batch) and <c>max_length</c> (prompt + steps; longer examples lose
/// their last steps) with the defaults of <see cref="EpochStageConfig"/>: 3, 8 and 1024.
/// </summary>
public sealed record ProcessRewardConfig : EpochStageConfig
{
    /// <summary>TRL <c>PRMConfig.disable_dropout</c> = True (prm_config.py).</summary>
    public override bool DisableDropout { get; init; } = true;
    /// <summary>TRL PRMConfig <c>step_separator</c> = "\n": appended to every step, its last token carries the step's label.</summary>
    public string StepSeparator { get; init; } = "\n";
    /// <summary>TRL PRMConfig <c>train_on_last_step_only</c> = false: only the last step's label (an outcome RM on step data) when true.</summary>
    public bool TrainOnLastStepOnly { get; init; }
    /// <summary>TRL PRMConfig <c>learning_rate</c> = 1e-5 (HF's 5e-5 lowered), linear decay as HF's default schedule.</summary>
    public OptimizerConfig Optimizer { get; init; } = new() { LearningRate = 1e-5, Schedule = ScheduleKind.Linear, WarmupRatio = 0, MinLearningRateRatio = 0 };

    public override void Validate(string section)
    {
        base.Validate(section);
        RefuseLogprobChunks(section, "the process reward model reads a token-classification head, not the LM head");
        if (string.IsNullOrEmpty(StepSeparator)) throw new RlhfException($"{section}.step_separator must not be empty: its last token carries each step's label.");
    }
}
