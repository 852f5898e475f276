namespace RlhfSharp.Rewards;

/// <summary>What scores a rollout in the online stages (recipe key <c>rewards</c>, a list whose weighted sum is the reward).</summary>
public enum RewardSourceKind
{
    /// <summary>The trained reward model (<see cref="RewardSource.Path"/>, else the run's <c>rm/checkpoint</c>).</summary>
    Rm,
    /// <summary>VADER compound sentiment of the completion, in [−1, 1] (Hutto &amp; Gilbert 2014).</summary>
    Vader,
    /// <summary>Mean AFINN valence per word of the completion, in [−5, 5] (Nielsen 2011).</summary>
    Afinn,
    /// <summary>Minus the distance in words from <see cref="RewardSource.TargetWords"/>, times <see cref="RewardSource.PenaltyPerWord"/>.</summary>
    Length,
    /// <summary>Matches of the regular expression <see cref="RewardSource.Pattern"/> in the completion.</summary>
    Keyword,
    /// <summary>Minus the fraction of repeated word n-grams (<see cref="RewardSource.N"/>) in the completion.</summary>
    Repetition,
    /// <summary>An HTTP endpoint (<see cref="RewardSource.Url"/>) that scores prompts + completions posted as JSON.</summary>
    Http,
    /// <summary>
    /// A process reward model (<see cref="RewardSource.Path"/>, else the run's <c>prm/checkpoint</c>): its step scores of the
    /// completion aggregated by <see cref="RewardSource.Aggregation"/> (<see cref="ProcessRewardModel"/>), in [0, 1].
    /// </summary>
    Prm,
}

/// <summary>One weighted term of the online reward: <c>{"source": "vader", "weight": 0.5}</c>. Unused fields are ignored.</summary>
public sealed record RewardSource
{
    public RewardSourceKind Source { get; init; } = RewardSourceKind.Rm;
    public double Weight { get; init; } = 1.0;
    /// <summary>rm: a reward-model folder; default the run's <c>rm/checkpoint</c>. prm: a process-reward-model folder; default the run's <c>prm/checkpoint</c>.</summary>
    public string? Path { get; init; }
    /// <summary>
    /// rm: the element type the frozen reward model is held in: float32 (transformers' default), bf16 (half the memory;
    /// its scores are cast to float32 before they are summed) or f16.
    /// </summary>
    public string Dtype { get; init; } = "float32";
    /// <summary>prm: how step scores become the completion's reward (min, product or last).</summary>
    public StepAggregation Aggregation { get; init; } = StepAggregation.Min;
    /// <summary>length: the wanted number of words.</summary>
    public int TargetWords { get; init; } = 50;
    /// <summary>length: reward lost per word of distance (TRL-style length rewards use ~0.01).</summary>
    public double PenaltyPerWord { get; init; } = 0.01;
    /// <summary>keyword: a .NET regular expression.</summary>
    public string? Pattern { get; init; }
    /// <summary>repetition: the n of the n-grams.</summary>
    public int N { get; init; } = 3;
    /// <summary>http: the endpoint.</summary>
    public string? Url { get; init; }
    /// <summary>http: the environment variable holding the bearer token (kept out of recipes and run folders).</summary>
    public string? TokenEnv { get; init; }
    public double TimeoutSeconds { get; init; } = 30;
    public int Retries { get; init; } = 3;
}
