namespace RlhfSharp.Pipeline;

/// <summary>
/// The encoder-decoder task of the pipeline (issue 19): a T5 policy turns a story opening (encoder input) into its
/// continuation (decoder output), is trained from the run's own feedback and graded by the same gold rubric, proxy RM and
/// held-out prompts as the decoder-only policies. No T5 checkpoint is shipped, so the policy starts from random weights
/// of stories260K's size, in the pipeline's tokenizer, and learns the task by SFT. Off unless the recipe has this section.
/// </summary>
public sealed record EncoderDecoderTaskConfig
{
    // The shape: T5's layout (relu, tied head, relative buckets) at stories260K's scale (d 64, 8 heads of 8, FFN 172,
    // ≈ 0.3M parameters with 3 + 3 layers), so it trains in the time the decoder-only stages do.
    [Range(1, int.MaxValue)] public int DModel { get; init; } = 64;          // stories260K's dim
    [Range(1, int.MaxValue)] public int DKv { get; init; } = 8;              // stories260K's head size (64 / 8)
    [Range(1, int.MaxValue)] public int DFf { get; init; } = 172;            // stories260K's hidden_dim
    [Range(1, int.MaxValue)] public int NumLayers { get; init; } = 3;        // 3 + 3 ≈ stories260K's 5 layers' parameters
    [Range(1, int.MaxValue)] public int NumDecoderLayers { get; init; } = 3;
    [Range(1, int.MaxValue)] public int NumHeads { get; init; } = 8;         // stories260K's n_heads
    [Range(2, int.MaxValue)] public int RelativeAttentionNumBuckets { get; init; } = 32;   // configuration_t5.py
    [Range(1, int.MaxValue)] public int RelativeAttentionMaxDistance { get; init; } = 128; // configuration_t5.py
    /// <summary>Seed of the random initial weights.</summary>
    public long Seed { get; init; } = 19;

    /// <summary>
    /// Besides the demonstrations, SFT also trains on every response the annotators ranked: base-model samples that
    /// stand in for T5's pretraining (a random T5 has never seen a story; the decoder-only policies start from one that
    /// has). The demonstrations come last in each epoch's data (<see cref="EncoderDecoderTask"/>).
    /// </summary>
    public bool SftOnRankedSamples { get; init; } = true;

    /// <summary>SFT from random weights: more epochs and a higher rate than the decoder-only SFT, which starts pretrained.</summary>
    public SftConfig Sft { get; init; } = new()
    {
        Epochs = 4, BatchSize = 32, MaxLength = 256,
        Optimizer = new OptimizerConfig { LearningRate = 1e-3, Schedule = ScheduleKind.Cosine, WarmupRatio = 0.05, Beta2 = 0.95 },
    };

    /// <summary>
    /// Methods trained from the T5 SFT model, offline from the rankings as the decoder-only ones (best vs worst response):
    /// dpo, ipo, orpo, simpo. Each is graded as <c>t5_&lt;method&gt;</c>.
    /// </summary>
    public AlignmentMethod[] Algos { get; init; } = [AlignmentMethod.Dpo];

    /// <summary>The preference methods' settings: the pipeline's <c>dpo</c> section (one epoch, batch 16, lr 2e-4).</summary>
    public DpoConfig Dpo { get; init; } = new()
    {
        Epochs = 1, BatchSize = 16, MaxLength = 256, MaxPromptLength = 64,
        Optimizer = new OptimizerConfig { LearningRate = 2e-4, Schedule = ScheduleKind.Linear, WarmupRatio = 0.05, MinLearningRateRatio = 0 },
    };

    public void Validate()
    {
        foreach (var m in Algos)
            if (EncoderDecoderTask.LossOf(m) is null)
                throw new RlhfException($"encoder_decoder.algos: '{Recipes.Recipe.Json.PropertyNamingPolicy!.ConvertName(m.ToString())}' is not trained on the encoder-decoder task; it takes dpo, ipo, orpo and simpo.");
    }
}
