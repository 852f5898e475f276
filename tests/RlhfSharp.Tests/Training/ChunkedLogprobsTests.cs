using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Recipes;
using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// Log-probs and entropies taken a chunk of positions at a time from the hidden states (<see cref="ChunkedLogprobs"/>, issue
/// 12 part 3) against the full-logits path, whose gradients are LibTorch's own autograd: the same values and gradients to
/// float32 round-off, for chunk sizes that do and do not divide the rows, with temperature, padding, a tied head and an
/// untied head with a bias and Gemma 2's soft-cap; and stages that train with chunking on.
/// </summary>
public sealed class ChunkedLogprobsTests
{
    const double Tolerance = 2e-5;

    static CausalLM Tiny(bool tied, bool biasAndSoftcap)
    {
        manual_seed(7);
        var model = new CausalLM(new TransformerConfig
        {
            ModelType = "llama", VocabSize = 61, HiddenSize = 16, IntermediateSize = 32, NumLayers = 2, NumHeads = 4, NumKvHeads = 2,
            MaxPositions = 32, TieWordEmbeddings = tied, LmHeadBias = biasAndSoftcap, FinalLogitSoftcap = biasAndSoftcap ? 3.0 : null,
        });
        // Larger logits than the default init, so the soft-cap (3) bends them and the distributions are far from uniform.
        using (no_grad()) foreach (var p in model.parameters()) p.mul_(3);
        return model;
    }

    // Three rows right-padded to 10 tokens (real lengths 10, 7, 4): 27 predicting positions.
    static (Tensor Ids, Tensor Mask) Batch()
    {
        var gen = new Generator(11);
        var ids = randint(1, 61, [3, 10], generator: gen, dtype: ScalarType.Int64);
        var mask = tensor(new long[] { 10, 7, 4 }).unsqueeze(1).gt(arange(10).unsqueeze(0)).to(ScalarType.Int64);
        return (ids * mask, mask);
    }

    /// <summary>Every parameter's gradient of <paramref name="loss"/>, cloned, then the gradients cleared.</summary>
    static Dictionary<string, Tensor> Gradients(CausalLM model, Tensor loss)
    {
        loss.backward();
        var grads = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        model.zero_grad();
        return grads;
    }

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    /// <summary>
    /// Every gradient of <paramref name="actual"/> equals <paramref name="expected"/>'s to <see cref="Tolerance"/> relative to
    /// its scale; with <paramref name="nonzero"/>, each expected gradient must also be nonzero, or the comparison would prove nothing.
    /// </summary>
    static void AssertSameGradients(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, bool nonzero = true)
    {
        foreach (var (name, e) in expected)
        {
            double largest = e.abs().max().item<float>(), scale = Math.Max(1.0, largest);
            if (nonzero) Assert.True(largest > 0, $"{name}: zero gradient, the comparison would prove nothing");
            Assert.True(MaxDiff(e, actual[name]) <= Tolerance * scale, $"{name}: gradients differ by {MaxDiff(e, actual[name])} (scale {scale})");
        }
    }

    [Theory]
    [InlineData(1, 1.0, true, false)]
    [InlineData(4, 1.0, true, false)]   // 27 rows: 4 does not divide them
    [InlineData(7, 0.7, true, false)]
    [InlineData(27, 0.7, false, true)]  // one chunk
    [InlineData(5, 1.3, false, true)]
    [InlineData(100, 1.0, false, true)] // a chunk larger than the rows
    public void Chunked_log_probs_entropies_and_gradients_equal_the_full_logits_path(int chunk, double temperature, bool tied, bool biasAndSoftcap)
    {
        using var scope = NewDisposeScope();
        using var model = Tiny(tied, biasAndSoftcap);
        var (ids, mask) = Batch();
        var m = mask.narrow(1, 1, 9).to(ScalarType.Float32);

        // The path every stage took before chunking: full logits, log-softmax by autograd.
        var logits = model.Forward(ids, mask);
        var lpFull = TokenLogprobs.Of(logits, ids, temperature);
        var entFull = TokenLogprobs.Entropy(logits, temperature);
        var gFull = Gradients(model, -(lpFull * m).sum() + 0.3 * (entFull * m).sum());

        var next = NextTokenDistributions.Of(model, ids, mask, chunkSize: chunk);
        Assert.Null(next.Logits);
        var lp = next.Logprobs(ids, temperature, keepEntropy: true);
        var ent = next.Entropy(temperature);
        Assert.Equal(new long[] { 3, 9 }, lp.shape);
        Assert.Equal(new long[] { 3, 9 }, ent.shape);
        var g = Gradients(model, -(lp * m).sum() + 0.3 * (ent * m).sum());

        Assert.True(MaxDiff(lpFull, lp) <= Tolerance, $"log-probs differ by {MaxDiff(lpFull, lp)}");
        Assert.True(MaxDiff(entFull, ent) <= Tolerance, $"entropies differ by {MaxDiff(entFull, ent)}");
        Assert.Equal(gFull.Keys.Order(), g.Keys.Order());
        if (biasAndSoftcap) Assert.Contains("lm_head.bias", g.Keys);
        AssertSameGradients(gFull, g);
    }

    /// <summary>
    /// The head's gradient goes straight into an existing .grad (gradient accumulation: no zeroing between micro-batches),
    /// and a tied embedding's own gradient is still added to it by autograd.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Gradients_accumulated_over_two_backward_passes_equal_the_full_paths(bool tied)
    {
        using var scope = NewDisposeScope();
        using var model = Tiny(tied, biasAndSoftcap: false);
        var (ids, mask) = Batch();
        var m = mask.narrow(1, 1, 9).to(ScalarType.Float32);
        Dictionary<string, Tensor> TwoPasses(int chunk)
        {
            for (int pass = 1; pass <= 2; pass++)
            {
                var next = NextTokenDistributions.Of(model, ids, mask, chunkSize: chunk);
                (-(next.Logprobs(ids) * m).sum() * pass).backward();
            }
            var grads = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
            model.zero_grad();
            return grads;
        }
        var gFull = TwoPasses(0);
        var g = TwoPasses(4);
        Assert.Equal(gFull.Keys.Order(), g.Keys.Order());
        Assert.Contains(tied ? "model.embed_tokens.weight" : "lm_head.weight", g.Keys);
        AssertSameGradients(gFull, g);
    }

    /// <summary>
    /// The weighted sum whose gradients are formed in the forward (SFT's loss): its value and every gradient equal the full
    /// logits path's, under an upstream gradient other than 1 and over two accumulated backward passes, with a tied head,
    /// and an untied one with a bias and Gemma 2's soft-cap.
    /// </summary>
    [Theory]
    [InlineData(4, 1.0, true, false)]
    [InlineData(27, 0.7, false, true)]
    [InlineData(5, 1.3, false, true)]
    [InlineData(100, 1.0, true, false)]
    public void A_weighted_sum_with_gradients_formed_in_the_forward_equals_the_full_logits_path(int chunk, double temperature, bool tied, bool biasAndSoftcap)
    {
        using var scope = NewDisposeScope();
        using var model = Tiny(tied, biasAndSoftcap);
        var (ids, mask) = Batch();
        // Uneven weights, some zero, as a loss mask scaled by a token count would not be.
        var w = mask.narrow(1, 1, 9).to(ScalarType.Float32) * linspace(0.2, 1.5, 9).unsqueeze(0);
        var values = new Dictionary<bool, List<float>> { [false] = [], [true] = [] };
        Dictionary<string, Tensor> TwoPasses(bool chunked)
        {
            for (int pass = 1; pass <= 2; pass++)
            {
                Tensor sum;
                if (chunked)
                {
                    var hidden = model.Hidden(ids, mask);
                    sum = ChunkedLogprobs.WeightedSum(hidden.narrow(1, 0, 9), ids.narrow(1, 1, 9), w, model.HeadWeights, temperature, chunk);
                }
                else sum = (TokenLogprobs.Of(model.Forward(ids, mask), ids, temperature) * w).sum();
                values[chunked].Add(sum.item<float>());
                (sum * (-0.37 * pass)).backward();
            }
            var grads = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
            model.zero_grad();
            return grads;
        }
        var gFull = TwoPasses(false);
        var g = TwoPasses(true);
        for (int i = 0; i < 2; i++)
            Assert.True(Math.Abs(values[false][i] - values[true][i]) <= Tolerance * Math.Max(1, Math.Abs(values[false][i])), $"sum {values[true][i]} vs {values[false][i]}");
        Assert.Equal(gFull.Keys.Order(), g.Keys.Order());
        Assert.Contains(tied ? "model.embed_tokens.weight" : "lm_head.weight", g.Keys);
        if (biasAndSoftcap) Assert.Contains("lm_head.bias", g.Keys);
        AssertSameGradients(gFull, g);
    }

    [Fact]
    public void A_weighted_sum_under_no_grad_or_with_a_frozen_head_is_the_full_paths()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny(tied: false, biasAndSoftcap: true);
        var (ids, mask) = Batch();
        var m = mask.narrow(1, 1, 9).to(ScalarType.Float32);
        using (no_grad())
        {
            var full = (TokenLogprobs.Of(model.Forward(ids, mask), ids) * m).sum().item<float>();
            var chunked = NextTokenDistributions.Of(model, ids, mask, chunkSize: 4).WeightedLogprobSum(ids, m);
            Assert.False(chunked.requires_grad);
            Assert.True(Math.Abs(full - chunked.item<float>()) <= Tolerance * Math.Abs(full), $"{chunked.item<float>()} vs {full}");
        }
        model.lm_head!.weight!.requires_grad = false;
        model.lm_head.bias!.requires_grad = false;
        var gFull = Gradients(model, -(TokenLogprobs.Of(model.Forward(ids, mask), ids) * m).sum());
        var g = Gradients(model, -NextTokenDistributions.Of(model, ids, mask, chunkSize: 6).WeightedLogprobSum(ids, m));
        Assert.DoesNotContain("lm_head.weight", g.Keys);
        Assert.Equal(gFull.Keys.Order(), g.Keys.Order());
        AssertSameGradients(gFull, g, nonzero: false);
    }

    [Fact]
    public void Log_probs_of_a_span_alone_equal_the_full_paths_span_and_an_unused_entropy_adds_no_gradient()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny(tied: true, biasAndSoftcap: false);
        var (ids, mask) = Batch();
        // Positions 3..6 as PPO reads a response after a 4-token prompt.
        var lpFull = TokenLogprobs.Of(model.Forward(ids, mask), ids, 0.8).narrow(1, 3, 4);
        var gFull = Gradients(model, -lpFull.sum());
        var next = NextTokenDistributions.Of(model, ids, mask, chunkSize: 3);
        var lp = next.Logprobs(ids, 0.8, start: 3, count: 4, keepEntropy: true);
        var entropy = next.Entropy(0.8, 3, 4);
        Assert.Equal(new long[] { 3, 4 }, entropy.shape);
        var g = Gradients(model, -lp.sum());
        // float32 rounding scales with the values: a span alone is a GEMM of other rows than the full path's, and some
        // CPUs' kernels block those differently (3.05e-5 on log-probs near −10 on a first-generation EPYC).
        double lpScale = Math.Max(1.0, lpFull.abs().max().item<float>());
        Assert.True(MaxDiff(lpFull, lp) <= Tolerance * lpScale, $"log-probs differ by {MaxDiff(lpFull, lp)} (scale {lpScale})");
        AssertSameGradients(gFull, g, nonzero: false);
        // Asked alone (no log-probs computed for these positions), the entropy is still the full path's.
        var alone = NextTokenDistributions.Of(model, ids, mask, chunkSize: 2).Entropy(0.8, 3, 4);
        Assert.True(MaxDiff(TokenLogprobs.Entropy(model.Forward(ids, mask), 0.8).narrow(1, 3, 4), alone) <= Tolerance);
    }

    [Fact]
    public void A_frozen_head_gets_no_gradient_and_the_body_gets_the_full_paths()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny(tied: false, biasAndSoftcap: true);
        model.lm_head!.weight!.requires_grad = false;
        model.lm_head.bias!.requires_grad = false;
        var (ids, mask) = Batch();
        var m = mask.narrow(1, 1, 9).to(ScalarType.Float32);
        var gFull = Gradients(model, -(TokenLogprobs.Of(model.Forward(ids, mask), ids) * m).sum());
        var g = Gradients(model, -(NextTokenDistributions.Of(model, ids, mask, chunkSize: 6).Logprobs(ids) * m).sum());
        Assert.DoesNotContain("lm_head.weight", g.Keys);
        Assert.Equal(gFull.Keys.Order(), g.Keys.Order());
        AssertSameGradients(gFull, g, nonzero: false);
    }

    [Fact]
    public void A_bf16_model_gets_the_full_paths_log_probs_to_bf16_round_off()
    {
        using var scope = NewDisposeScope();
        using var model = Tiny(tied: true, biasAndSoftcap: false);
        model.to(ScalarType.BFloat16);
        var (ids, mask) = Batch();
        using var _ = no_grad();
        var logits = model.Forward(ids, mask);
        var full = TokenLogprobs.Of(logits, ids);
        var chunked = NextTokenDistributions.Of(model, ids, mask, chunkSize: 5).Logprobs(ids);
        Assert.Equal(ScalarType.Float32, chunked.dtype);
        // The head's bf16 GEMM may round a chunk's logits differently from the whole's, by at most one bf16 ulp
        // (2⁻⁷ relative) each; a log-prob (a logit minus a logsumexp) then moves by at most two of the largest.
        double bound = 2 * Math.Pow(2, -7) * logits.abs().max().to(ScalarType.Float32).item<float>();
        Assert.True(MaxDiff(full, chunked) <= bound, $"bf16 log-probs differ by {MaxDiff(full, chunked)} (bound {bound})");
    }

    // "Once upon a time" → a fixed odd continuation (TrainerTests' demonstration).
    static readonly int[] Prompt = [1, 403, 407, 261, 378];
    static readonly int[] Target = [300, 301, 302, 303, 304, 305, 2];

    [Fact]
    public void Sft_and_dpo_with_chunked_log_probs_train_as_with_full_logits()
    {
        var demo = new SftExample([.. Prompt, .. Target], [.. Prompt.Select(_ => false), .. Target.Select(_ => true)]);
        var sft = new SftConfig { Epochs = 8, BatchSize = 2, Optimizer = new OptimizerConfig { LearningRate = 3e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } };
        List<Dictionary<string, double>> Sft(int chunk)
        {
            using var model = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
            var log = new MetricsLog(null);
            new SftTrainer(model, sft with { LogprobChunkSize = chunk }, padId: 0) { Metrics = log }.Train([demo, demo], []);
            return log.Rows;
        }
        var full = Sft(0);
        var chunked = Sft(4);
        Assert.True(chunked[^1]["loss"] < chunked[0]["loss"] * 0.3, $"SFT loss {chunked[0]["loss"]:F3} → {chunked[^1]["loss"]:F3}");
        for (int i = 0; i < full.Count; i++)
            Assert.True(Math.Abs(full[i]["loss"] - chunked[i]["loss"]) <= 1e-4 * Math.Max(1, full[i]["loss"]), $"step {i + 1}: loss {full[i]["loss"]} vs {chunked[i]["loss"]}");

        var pair = new PreferenceExample(Prompt, Target, [310, 311, 312, 2]);
        var dpo = new DpoConfig { Epochs = 4, BatchSize = 2, Optimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } };
        List<Dictionary<string, double>> Dpo(int chunk)
        {
            using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
            using var reference = policy.Clone();
            var log = new MetricsLog(null);
            new PreferenceTrainer(policy, reference, dpo with { LogprobChunkSize = chunk }, padId: 0) { Metrics = log }.Train([pair, pair], []);
            return log.Rows;
        }
        var dpoFull = Dpo(0);
        var dpoChunked = Dpo(3);
        Assert.True(dpoChunked[^1]["loss"] < dpoChunked[0]["loss"], $"DPO loss {dpoChunked[0]["loss"]:F4} → {dpoChunked[^1]["loss"]:F4}");
        for (int i = 0; i < dpoFull.Count; i++)
            foreach (var key in new[] { "loss", "logps/chosen", "logps/rejected", "rewards/margins" })
                Assert.True(Math.Abs(dpoFull[i][key] - dpoChunked[i][key]) <= 1e-4 * Math.Max(1, Math.Abs(dpoFull[i][key])), $"step {i + 1} {key}: {dpoFull[i][key]} vs {dpoChunked[i][key]}");
    }

    static Tensor Score(SampleBatch b)
    {
        var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
        return (response.eq(261).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1) * 10;
    }
    static readonly int[][] Prompts = Enumerable.Range(0, 8).Select(i => (int[])[1, 403 + i % 4]).ToArray();
    static OptimizerConfig Constant => new() { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant };

    static void AssertSameRow(IReadOnlyDictionary<string, double> full, IReadOnlyDictionary<string, double> chunked, params string[] keys)
    {
        var differ = keys.Where(key => !(Math.Abs(full[key] - chunked[key]) <= 1e-4 * Math.Max(1, Math.Abs(full[key])))).ToList();
        Assert.True(differ.Count == 0, string.Join("; ", differ.Select(key => $"{key}: {full[key]} (full logits) vs {chunked[key]} (chunked)")) +
            "\nfull: " + string.Join(", ", full.Select(kv => $"{kv.Key}={kv.Value}")) + "\nchunked: " + string.Join(", ", chunked.Select(kv => $"{kv.Key}={kv.Value}")));
    }

    [Fact]
    public void Ppo_and_grpo_with_chunked_log_probs_take_the_full_logits_step()
    {
        Dictionary<string, double> Ppo(int chunk)
        {
            using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
            using var reference = policy.Clone();
            var config = new PpoConfig
            {
                Steps = 1, RolloutBatchSize = 8, MiniBatchSize = 4, PpoEpochs = 1, MaxNewTokens = 8, Temperature = 0.7, PtxCoef = 0,
                Critic = CriticKind.ValueHead, ActorOptimizer = Constant, LogprobChunkSize = chunk,
            };
            var log = new MetricsLog(null);
            new PpoTrainer(policy, reference, null, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config) { Metrics = log }.Train(Prompts, []);
            return log.Rows.Single();
        }
        // Two minibatches: the second's ratio moved off 1 by the first's update, under either path.
        AssertSameRow(Ppo(0), Ppo(5), "policy_loss", "value_loss", "approx_kl", "entropy", "kl", "logprobs_diff_sampler", "grad_norm_actor");

        // Rewards that differ within each group: with equal rewards every advantage is 0, the full path's gradient is exactly
        // 0 while the chunked one is round-off (1e-6), and AdamW turns any nonzero gradient into a full-size step.
        static Tensor Varied(SampleBatch b)
        {
            var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]).to(float32);
            return (response * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1) / 100;
        }

        Dictionary<string, double> Grpo(int chunk)
        {
            using var policy = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
            using var reference = policy.Clone();
            var config = new GroupRlConfig
            {
                Estimator = AdvantageEstimator.Grpo, Steps = 1, PromptsPerStep = 2, GroupSize = 4, MaxNewTokens = 8, MiniBatchSize = 4, Epochs = 2,
                Temperature = 0.7, Beta = 0.04, Optimizer = Constant, LogprobChunkSize = chunk,
            };
            var log = new MetricsLog(null);
            new GroupRlTrainer(policy, reference, Varied, new Sampler(policy) { EosIds = [2], PadId = 0 }, config) { Metrics = log }.Train(Prompts);
            return log.Rows.Single();
        }
        var grpo = Grpo(0);
        Assert.True(grpo["advantage_std"] > 0.1, $"advantage std {grpo["advantage_std"]}: the comparison needs a nonzero gradient");
        AssertSameRow(grpo, Grpo(3), "policy_loss", "kl_loss", "approx_kl", "entropy", "kl", "logprobs_diff_sampler", "grad_norm");
    }

    [Theory]
    [InlineData("rm.logprob_chunk_size=8", "rm.logprob_chunk_size")]
    [InlineData("ilql.logprob_chunk_size=8", "ilql.logprob_chunk_size")]
    public void Chunking_a_stage_that_reads_no_token_log_probs_is_refused_naming_the_key(string set, string key)
    {
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<global::RlhfSharp.Pipeline.PipelineConfig>(null, [set]));
        Assert.Contains(key, e.Message);
    }
}
