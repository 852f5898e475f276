namespace RlhfSharp.Pipeline;

/// <summary>
/// A recipe for the stage commands (<c>rlhf sft|rm|ppo</c>, the preference commands <c>dpo|ipo|kto|orpo|simpo</c> and
/// the critic-free ones <c>grpo|rloo|reinforce-pp|remax</c>) on your own data: which model, which files, and the
/// stage configs. Stages share a run folder: later stages start from <c>&lt;run&gt;/sft/checkpoint</c> when it
/// exists, and the online ones score with <c>&lt;run&gt;/rm/checkpoint</c>.
/// </summary>
[RlhfSharp.Recipes.RecipeFor("the stage commands (rlhf sft, rm, ppo, dpo, grpo, …)", Adopts = typeof(PipelineConfig))]
public sealed record StageRecipe : IMethodConfigs
{
    public string Name { get; init; } = "custom";
    /// <summary>The base model: an HF folder, a llama2.c .bin, or a built-in name.</summary>
    public string Model { get; init; } = "stories260k";
    /// <summary>SFT demonstrations (prompt/completion, messages, text, or HH-style chosen/rejected: the chosen side).</summary>
    public string? SftData { get; init; }
    /// <summary>Rankings or pairwise preferences for the reward model.</summary>
    public string? RmData { get; init; }
    /// <summary>Step-labelled completions for <c>rlhf prm</c> (TRL's stepwise supervision: prompt, completions = steps, labels).</summary>
    public string? PrmData { get; init; }
    /// <summary>Prompts for PPO rollouts (any file with a prompt field, HH-style dialogues included).</summary>
    public string? PpoPrompts { get; init; }
    /// <summary>
    /// Pairwise preferences for <c>rlhf dpo|ipo|simpo|orpo</c>, or labelled completions (or preferences, unpaired) for
    /// <c>rlhf kto</c>; defaults to <see cref="RmData"/> when unset.
    /// </summary>
    public string? DpoData { get; init; }
    /// <summary>
    /// Scored completions for <c>rlhf ilql</c>: <c>prompt</c>/<c>completion</c>/<c>reward</c> rows, or rankings (scored by
    /// rank) and preference pairs (chosen 1, rejected 0); defaults to <see cref="RmData"/> when unset.
    /// </summary>
    public string? IlqlData { get; init; }
    /// <summary>Text for PPO-ptx (defaults to the SFT data when set).</summary>
    public string? PtxData { get; init; }
    /// <summary>Use at most this many records of each file (0 = all).</summary>
    [Range(0, int.MaxValue)]
    public int MaxRecords { get; init; }
    /// <summary>Prompts longer than this many tokens keep their end (the latest turns).</summary>
    [Range(1, int.MaxValue)]
    public int MaxPromptTokens { get; init; } = 256;
    public FieldMap Fields { get; init; } = new();
    /// <summary>
    /// The reward of the online stages (ppo, rs, online-dpo, grpo, rloo, reinforce-pp, remax): the weighted sum of these
    /// sources, e.g. <c>[{"source": "rm"}, {"source": "vader", "weight": 0.5}]</c>. Default: the run's reward model alone.
    /// </summary>
    public List<RewardSource> Rewards { get; init; } = [new RewardSource()];
    public bool SkipInvalid { get; init; }
    public SftConfig Sft { get; init; } = new();
    public RewardConfig Rm { get; init; } = new();
    /// <summary>The process reward model (<c>rlhf prm</c>): TRL PRMConfig's defaults.</summary>
    public Algorithms.ProcessReward.ProcessRewardConfig Prm { get; init; } = new();
    public PpoConfig Ppo { get; init; } = new();
    /// <summary>Rejection-sampling fine-tuning (<c>rlhf rs</c>); prompts come from <see cref="PpoPrompts"/>.</summary>
    public RejectionSamplingConfig Rs { get; init; } = new();
    /// <summary>Online DPO (<c>rlhf online-dpo</c>); prompts come from <see cref="PpoPrompts"/>.</summary>
    public OnlineDpoConfig OnlineDpo { get; init; } = new();
    /// <summary>The offline preference stages; the command sets <see cref="DpoConfig.Loss"/>.</summary>
    public DpoConfig Dpo { get; init; } = new();
    /// <summary>The critic-free stages (<c>rlhf grpo|rloo|reinforce-pp|remax</c>; the command sets the estimator). Prompts come from <see cref="PpoPrompts"/>.</summary>
    public GroupRlConfig Grpo { get; init; } = new();
    /// <summary>ILQL (<c>rlhf ilql</c>) on <see cref="IlqlData"/>.</summary>
    public IlqlConfig Ilql { get; init; } = new();
    /// <summary>NLPO's masking policy (<c>rlhf nlpo</c>); everything else is the <see cref="Ppo"/> section's.</summary>
    public NlpoConfig Nlpo { get; init; } = new();
    /// <summary>A2C's update (<c>rlhf a2c</c>); rollouts, reward, critic and optimizers are the <see cref="Ppo"/> section's.</summary>
    public A2cConfig A2c { get; init; } = new();
}
