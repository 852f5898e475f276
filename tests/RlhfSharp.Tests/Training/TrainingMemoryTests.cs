using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Checkpoints;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Pipeline;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// The memory estimate of a stage's training (<see cref="TrainingMemory"/>, issue 12 part 3): its terms for Qwen2.5-0.5B's
/// shape against the parameter count Hugging Face publishes for it, the effect of LoRA, checkpointing and chunked log-probs,
/// the refusal's message, and a stage refused before a byte of its model's weights is read.
/// </summary>
public sealed class TrainingMemoryTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-trainmem-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    // Qwen/Qwen2.5-0.5B config.json: 24 layers, hidden 896, 14 query / 2 KV heads, FFN 4864, vocab 151,936, tied.
    static readonly TransformerConfig Qwen05B = new()
    {
        ModelType = "qwen2", VocabSize = 151936, HiddenSize = 896, IntermediateSize = 4864, NumLayers = 24, NumHeads = 14, NumKvHeads = 2,
        MaxPositions = 32768, TieWordEmbeddings = true, QkvBias = true, RopeTheta = 1000000,
    };

    [Fact]
    public void Full_fine_tuning_counts_weights_gradients_and_two_adamw_moments_per_parameter()
    {
        var m = TrainingMemory.Estimate(Qwen05B, ScalarType.Float32, lora: null, rows: 4, tokens: 512, checkpointing: false, logprobChunkSize: 0, frozenBytes: 0);
        // The model card's count: 0.49B, 494,032,768 parameters (safetensors metadata of Qwen/Qwen2.5-0.5B).
        Assert.Equal(494_032_768L * 4, m.Weights);
        Assert.Equal(m.Weights, m.Gradients);
        Assert.Equal(2 * m.Weights, m.OptimizerMoments);
        // Float32 logits of 4 × 512 positions over 151,936 tokens are 1.24 GB each; the estimate holds three such buffers.
        Assert.Equal(3L * 4 * 512 * 151936 * 4, m.Logits);
        // The backward's transient: the embedding's dense float32 gradient (vocab × hidden); the float32 step's: two float32
        // copies of that largest parameter, which here exceed the backward's activations, logits and gradient together.
        Assert.Equal(151936L * 896 * 4, m.EmbeddingGradient);
        Assert.Equal(2L * 151936 * 896 * 4, m.OptimizerStep);
        Assert.Equal(TrainingMemory.Runtime + m.Weights + m.Gradients + m.OptimizerMoments + m.Activations + m.Logits + m.EmbeddingGradient, m.Total);
    }

    /// <summary>
    /// The estimate against the measured peak of the one full-weight step measured at this size (docs/PERFORMANCE.md,
    /// "Qwen2.5-0.5B shape: a full-weight SFT step": 6,915 MiB with checkpointing, chunks of 256 and bfloat16 moments, the
    /// forward's peak since SFT's chunked head forms its weight gradient there): it must not fall below it (a refusal then
    /// would come too late) nor exceed it by more than a tenth.
    /// </summary>
    [Fact]
    public void The_estimate_of_the_measured_qwen_sft_step_is_within_a_tenth_above_its_peak()
    {
        var m = TrainingMemory.Estimate(Qwen05B, ScalarType.Float32, null, 4, 512, true, 256, 0,
            new OptimizerConfig { MomentumDtype = MomentDtype.Bfloat16, VarianceDtype = MomentDtype.Bfloat16 });
        double measured = 6915.4 * 1048576;
        Assert.InRange(m.Total / measured, 1.0, 1.1);
    }

    [Fact]
    public void Lora_checkpointing_and_chunked_log_probs_each_shrink_their_term()
    {
        var full = TrainingMemory.Estimate(Qwen05B, ScalarType.Float32, null, 4, 512, false, 0, 0);
        var lora = TrainingMemory.Estimate(Qwen05B, ScalarType.Float32, new LoraConfig { R = 8 }, 4, 512, false, 0, 0);
        var checkpointed = TrainingMemory.Estimate(Qwen05B, ScalarType.Float32, null, 4, 512, true, 0, 0);
        var chunked = TrainingMemory.Estimate(Qwen05B, ScalarType.Float32, null, 4, 512, false, 256, 0);
        Assert.Equal(full.Weights, lora.Weights);
        Assert.True(lora.Gradients < full.Gradients / 100, $"LoRA gradients {lora.Gradients} vs {full.Gradients}");
        Assert.True(checkpointed.Activations < full.Activations / 10, $"checkpointed activations {checkpointed.Activations} vs {full.Activations}");
        Assert.True(checkpointed.Activations > 4L * 512 * 24 * 896 * 4, "checkpointing still keeps every layer's float32 input");
        Assert.Equal(full.Logits / 8, chunked.Logits); // 256 of 2,048 rows at a time
    }

    [Fact]
    public void A_stage_too_large_is_refused_with_both_numbers_and_what_to_change()
    {
        var m = TrainingMemory.Estimate(Qwen05B, ScalarType.Float32, null, 4, 512, false, 0, frozenBytes: 494_032_768L * 4);
        var e = Assert.Throws<RlhfException>(() => m.Check("dpo", available: 4_000_000_000, from: "a test"));
        Assert.Contains($"needs about {m.Total / 1e9:0.00} GB", e.Message);
        Assert.Contains("only 4.00 GB is available (a test)", e.Message);
        foreach (var advice in new[] { "dpo.lora", "dpo.reference_dtype", "dpo.gradient_checkpointing", "dpo.logprob_chunk_size" })
            Assert.Contains(advice, e.Message);
        m.Check("dpo", available: m.Total, from: "a test"); // exactly enough passes
    }

    [Fact]
    public void A_dpo_stage_that_cannot_fit_stops_before_its_weights_are_read()
    {
        using var stories = PretrainedModel.Load("stories260k");
        // A policy folder whose config.json is real but whose weights are missing: the load would fail on them, so a memory
        // refusal proves the estimate ran first.
        string policyDir = Path.Combine(tmp, "policy");
        Directory.CreateDirectory(policyDir);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf", "qwen2_tiny_tied", "config.json"), Path.Combine(policyDir, "config.json"));
        var stages = new RunStages(stories, Path.Combine(tmp, "run"));
        var config = new DpoConfig { BatchSize = 1_000_000_000, MaxLength = 32 };
        var e = Assert.Throws<RlhfException>(() => { stages.Preference(config, policyDir, [], [], CancellationToken.None); });
        Assert.StartsWith("dpo: training needs about", e.Message);
        Assert.Contains("gradient_checkpointing", e.Message);
    }

    [Fact]
    public void Bfloat16_moments_halve_the_moments_term_and_the_advice_names_them()
    {
        var full = TrainingMemory.Estimate(Qwen05B, ScalarType.Float32, null, 4, 512, true, 256, 0);
        var half = TrainingMemory.Estimate(Qwen05B, ScalarType.Float32, null, 4, 512, true, 256, 0,
            new OptimizerConfig { MomentumDtype = MomentDtype.Bfloat16, VarianceDtype = MomentDtype.Bfloat16 });
        Assert.Equal(full.OptimizerMoments / 2, half.OptimizerMoments);
        var e = Assert.Throws<RlhfException>(() => full.Check("sft", available: 1_000_000_000, from: "a test"));
        Assert.Contains("momentum_dtype and variance_dtype: bfloat16", e.Message);
        var f = Assert.Throws<RlhfException>(() => half.Check("sft", available: 1_000_000_000, from: "a test"));
        Assert.DoesNotContain("momentum_dtype", f.Message);
    }

    /// <summary>The stages whose check came only at load time before (issue 12 §3): each stops on the estimate, before a weight is read.</summary>
    [Theory]
    [InlineData("rm")]
    [InlineData("prm")]
    [InlineData("rs.sft")]
    [InlineData("online_dpo.dpo")]
    [InlineData("ilql")]
    public void Every_training_stage_that_cannot_fit_stops_before_its_weights_are_read(string section)
    {
        using var stories = PretrainedModel.Load("stories260k");
        string policyDir = Path.Combine(tmp, "policy");
        Directory.CreateDirectory(policyDir);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf", "qwen2_tiny_tied", "config.json"), Path.Combine(policyDir, "config.json"));
        var stages = new RunStages(stories, Path.Combine(tmp, "run"));
        string noRm = Path.Combine(tmp, "no-rm");
        const int huge = 1_000_000_000;
        var e = Assert.Throws<RlhfException>(() => _ = section switch
        {
            "rm" => stages.RewardModel(new() { PromptsPerBatch = huge, MaxLength = 32 }, policyDir, [], [], [], CancellationToken.None),
            "prm" => stages.ProcessRewardModel(new() { BatchSize = huge, MaxLength = 32 }, policyDir, RlhfSharp.Rewards.StepSplit.Separator, [], [], CancellationToken.None),
            "rs.sft" => stages.RejectionSampling(new() { Sft = new() { BatchSize = huge, MaxLength = 32 } }, policyDir, noRm, [], CancellationToken.None),
            "online_dpo.dpo" => stages.OnlineDpo(new() { Dpo = new() { BatchSize = huge, MaxLength = 32 } }, policyDir, noRm, [[1, 2, 3]], CancellationToken.None),
            _ => stages.Ilql(new() { BatchSize = huge, MaxLength = 32, MaxPromptLength = 8 }, policyDir, [], [], CancellationToken.None),
        });
        Assert.StartsWith($"{section}: training needs about", e.Message);
    }
}
