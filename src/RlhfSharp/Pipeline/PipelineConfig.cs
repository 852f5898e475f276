namespace RlhfSharp.Pipeline;

/// <summary>Story openings: how many for training and how many held out for the final evaluation.</summary>
public sealed record PromptsConfig
{
    [Range(1, int.MaxValue)]
    public int Train { get; init; } = 2000;
    /// <summary>At least 200 held-out prompts, so 95% intervals are tight enough to rank the policies.</summary>
    [Range(2, int.MaxValue)] // a 95% interval needs two
    public int Eval { get; init; } = 200;
    public int Seed { get; init; } = 1234;
}

/// <summary>How the simulated people give feedback on base-model samples.</summary>
public sealed record FeedbackConfig
{
    /// <summary>Prompts whose best-of-N base sample (picked by an annotator) becomes an SFT demonstration.</summary>
    [Range(1, int.MaxValue)]
    public int DemonstrationPrompts { get; init; } = 256;
    [Range(1, int.MaxValue)]
    public int DemonstrationCandidates { get; init; } = 4;
    /// <summary>Prompts whose K samples an annotator ranks for the RM (InstructGPT: K between 4 and 9, §3.5).</summary>
    [Range(1, int.MaxValue)]
    public int RankingPrompts { get; init; } = 1600;
    [Range(2, int.MaxValue)] // a ranking orders at least two answers
    public int K { get; init; } = 4;
    [Range(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 64;
    [Range(0.0, double.MaxValue)]
    public double Temperature { get; init; } = 1.0;
    public ulong Seed { get; init; } = 7;
    /// <summary>Set the annotators' noise so they agree with the gold ordering this often (InstructGPT: 72.6%, §5.1).</summary>
    [Range(0.5, 1.0, MinimumIsExclusive = true, MaximumIsExclusive = true)] // AnnotatorPool.Calibrate's domain
    public double TargetAgreement { get; init; } = 0.73;
    public AnnotatorPoolConfig Annotators { get; init; } = new();
}

/// <summary>The final comparison on held-out prompts.</summary>
public sealed record EvalConfig
{
    [Range(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 64;
    [Range(0.0, double.MaxValue)]
    public double Temperature { get; init; } = 1.0;
    /// <summary>n of the best-of-n baseline (samples from SFT, the RM picks).</summary>
    [Range(1, int.MaxValue)]
    public int BestOfN { get; init; } = 4;
    /// <summary>Prompts shown with every policy's story in report.html.</summary>
    [Range(0, int.MaxValue)]
    public int ShownSamples { get; init; } = 12;
    public ulong Seed { get; init; } = 99;
}

/// <summary>
/// The whole InstructGPT recipe on the built-in "kinder stories" task. The stage configs below are the
/// published defaults (see each record) changed where a 260K-parameter model on 2 CPU cores needs it: larger
/// learning rates (tiny models train at 1e-3, as llama2.c trained stories260K at 5e-4), smaller batches, fewer steps.
/// </summary>
[RlhfSharp.Recipes.RecipeFor("rlhf pipeline (the built-in kinder-stories task)")]
public sealed record PipelineConfig : IMethodConfigs
{
    public string Name { get; init; } = "kinder-stories";
    public string Model { get; init; } = "stories260k";
    public PromptsConfig Prompts { get; init; } = new();
    public FeedbackConfig Feedback { get; init; } = new();
    public GoldRubricConfig Gold { get; init; } = new();
    public SftConfig Sft { get; init; } = new()
    {
        Epochs = 2, BatchSize = 16, MaxLength = 256,
        Optimizer = new OptimizerConfig { LearningRate = 2e-4, Schedule = ScheduleKind.Cosine, WarmupRatio = 0.05, Beta2 = 0.95 },
    };
    public RewardConfig Rm { get; init; } = new()
    {
        Epochs = 3, PromptsPerBatch = 16, MaxLength = 256,
        Optimizer = new OptimizerConfig { LearningRate = 3e-4, WarmupRatio = 0.05 },
    };
    /// <summary>
    /// Train a process reward model on the ranking samples, cut into sentences and labelled by the gold rubric
    /// (<see cref="SentenceStepLabels"/>), and grade best-of-n picked by it (min, product, last step) next to the RM's pick.
    /// </summary>
    public bool TrainPrm { get; init; } = true;
    /// <summary>The PRM: one pass over the sentence-labelled samples, with the RM's batch and learning rate (TRL's 1e-5 barely moves 260K parameters).</summary>
    public Algorithms.ProcessReward.ProcessRewardConfig Prm { get; init; } = new()
    {
        Epochs = 1, BatchSize = 16, MaxLength = 256,
        Optimizer = new OptimizerConfig { LearningRate = 3e-4, WarmupRatio = 0.05 },
    };
    /// <summary>
    /// PPO with an adaptive KL penalty (Ziegler et al. 2019, §2.2): β starts at TRL PPOv1's <c>init_kl_coef</c> = 0.2 and
    /// tracks TRL's and Ziegler et al.'s <c>target</c> = 6 nats per sequence (KL summed over the response, the unit of
    /// lm-human-preferences' <c>adaptive_kl.target</c>). The horizon is scaled to this run's batch: β moves by at most
    /// ±0.2·B/horizon per rollout batch, and B/horizon = 32/320 = 0.1 is the paper's K_β; the published horizon 10000
    /// assumes batches of 512 and would hold β fixed over 60 batches of 32 (docs/algorithms/ppo.md). Measured on the
    /// default run in docs/LEADERBOARD.md: with a fixed β = 0.05 the KL to SFT ended at 16.3 nats.
    /// </summary>
    public PpoConfig Ppo { get; init; } = new()
    {
        Steps = 60, RolloutBatchSize = 32, MiniBatchSize = 16, PpoEpochs = 2, MaxNewTokens = 64, PtxCoef = 0.05,
        InitKlCoef = 0.2, KlTargetPerSequence = 6, KlHorizon = 320,
        ActorOptimizer = new OptimizerConfig { LearningRate = 3e-4, WarmupRatio = 0.05 },
        CriticOptimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0.05 },
    };
    /// <summary>
    /// The methods trained from the same SFT model and RM and graded side by side (<c>rlhf pipeline --algo</c>). The
    /// online ones get PPO's sample budget: 1,920 sampled completions of at most 64 tokens (PPO: 60 steps × 32).
    /// The offline ones train on the best and worst response of each ranking the RM learned from.
    /// </summary>
    public AlignmentMethod[] Algos { get; init; } = [AlignmentMethod.Ppo];
    /// <summary>
    /// DPO, cDPO, IPO, SimPO, ORPO and KTO: one epoch over the best and worst response of each ranking. TRL's β and loss
    /// defaults; the learning rate is raised as for SFT, since TRL's 1e-6 barely moves a 260K-parameter model.
    /// </summary>
    public DpoConfig Dpo { get; init; } = new()
    {
        Epochs = 1, BatchSize = 16, MaxLength = 256, MaxPromptLength = 64, PrecomputeReferenceLogprobs = true,
        Optimizer = new OptimizerConfig { LearningRate = 2e-4, Schedule = ScheduleKind.Linear, WarmupRatio = 0.05, MinLearningRateRatio = 0 },
    };
    /// <summary>
    /// GRPO, RLOO, REINFORCE++(-baseline) and ReMax: 60 steps × 8 prompts × G = 4 (ReMax adds one greedy sample per
    /// prompt, its baseline); PPO's two epochs over minibatches of 16 and its learning rate; KL held with β = 0.05, as PPO's.
    /// </summary>
    public GroupRlConfig Grpo { get; init; } = new()
    {
        Steps = 60, PromptsPerStep = 8, GroupSize = 4, MaxNewTokens = 64, MiniBatchSize = 16, Epochs = 2, Beta = 0.05, RewardKlCoef = 0.05,
        Optimizer = new OptimizerConfig { LearningRate = 3e-4, Schedule = ScheduleKind.Constant, WarmupRatio = 0 },
    };
    /// <summary>Rejection sampling: 3 rounds × 160 prompts × best-of-4 = 1,920 samples; each round's picks trained as SFT is.</summary>
    public RejectionSamplingConfig Rs { get; init; } = new()
    {
        Iterations = 3, PromptsPerIteration = 160, SamplesPerPrompt = 4, MaxNewTokens = 64,
        Sft = new SftConfig { Epochs = 1, BatchSize = 16, MaxLength = 256, Optimizer = new OptimizerConfig { LearningRate = 2e-4, Schedule = ScheduleKind.Constant, WarmupRatio = 0 } },
    };
    /// <summary>Online DPO: 4 rounds × 240 prompts × 2 answers = 1,920 samples; each round one DPO pass as above.</summary>
    public OnlineDpoConfig OnlineDpo { get; init; } = new()
    {
        Iterations = 4, PromptsPerIteration = 240, MaxNewTokens = 64,
        Dpo = new DpoConfig
        {
            Epochs = 1, BatchSize = 16, MaxLength = 256, MaxPromptLength = 64,
            Optimizer = new OptimizerConfig { LearningRate = 2e-4, Schedule = ScheduleKind.Constant, WarmupRatio = 0 },
        },
    };
    /// <summary>
    /// ILQL: one epoch over every response of the 1,440 training rankings (the RM's and the DPO family's labels), scored
    /// by rank; batches of 32 (180 steps, about the DPO family's forward passes); the learning rate raised and gradients
    /// clipped as for DPO. trlX's τ, γ, CQL/AWAC scales, α, sync interval and decoding β = 1.
    /// </summary>
    public IlqlConfig Ilql { get; init; } = new()
    {
        Epochs = 1, BatchSize = 32, MaxLength = 256, MaxPromptLength = 64,
        Optimizer = new OptimizerConfig { LearningRate = 2e-4, Schedule = ScheduleKind.Linear, WarmupRatio = 0.05, MinLearningRateRatio = 0, Beta2 = 0.95, WeightDecay = 1e-6 },
    };
    /// <summary>
    /// NLPO: the <c>ppo</c> section's run (PPO's sample budget) with RL4LMs' masking policy. RL4LMs keeps at least 100 of
    /// GPT-2's 50,257 tokens (0.2%); on stories260K's 512 that is 1 token. Kept at 100 (a fifth of this vocabulary), the
    /// top-p set almost never binds: a 6-step run sampled exactly PPO's tokens, the masked entropy 0.001 nats under PPO's.
    /// </summary>
    public NlpoConfig Nlpo { get; init; } = new() { MinTokensToKeep = 1 };
    /// <summary>A2C: the <c>ppo</c> section's rollouts (PPO's sample budget), critic and KL-shaped reward, one update per batch.</summary>
    public A2cConfig A2c { get; init; } = new();
    /// <summary>Who labels online DPO's pairs: the reward model (as the other online methods score) or the simulated annotators.</summary>
    public OnlineDpoJudge OnlineDpoJudge { get; init; } = OnlineDpoJudge.Rm;
    public EvalConfig Eval { get; init; } = new();
    /// <summary>
    /// The encoder-decoder task (issue 19): a T5 policy from random weights, trained by SFT and the preference methods of
    /// this section on the same feedback and graded beside the others as <c>t5_sft</c>, <c>t5_dpo</c>, …; off when absent.
    /// </summary>
    public EncoderDecoderTaskConfig? EncoderDecoder { get; init; }
}

/// <summary>The labeller of online DPO's pairs in the built-in pipeline.</summary>
public enum OnlineDpoJudge
{
    /// <summary>The trained reward model (RLAIF-style: Guo et al. 2024).</summary>
    Rm,
    /// <summary>The simulated people who gave the original feedback, asked afresh about each new pair (costly with real people).</summary>
    Annotators,
}
