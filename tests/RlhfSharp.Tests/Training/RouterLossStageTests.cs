using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Common;
using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Algorithms.RejectionSampling;
using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// The router's load-balancing loss in every training stage of a mixture of experts (issue 18): with
/// <c>output_router_logits</c> on, each stage's objective is its own loss plus <c>router_aux_loss_coef</c> × HF's
/// <c>load_balancing_loss_func</c> of its training forward (padding left out by that forward's attention mask), and its
/// metrics rows carry the expert load and the loss.
/// </summary>
/// <remarks>
/// How the objective is seen from outside: with AdamW's eps far above every gradient (and no weight decay or clipping) the
/// first step moves each weight by −lr·g/(|g| + eps) ≈ −(lr/eps)·g, linear in the gradient. The same seeded step run with
/// the router loss on (coefficient c) and off differs only by that term, so the two runs' router weights differ by
/// −(lr/eps)·c·∂aux/∂W. The expected ∂aux/∂W comes from a separate forward of the initial model on the same sequences
/// (the rollouts a PPO/GRPO step trained on are caught in its reward function) through <see cref="RouterBalanceLoss.Compute"/>, which
/// <c>VariantTrainingTests.Router_balance_loss_matches_hf_load_balancing_loss_func</c> pins to PyTorch values written from
/// transformers v4.44 (fixtures/moe/generate_router_loss.py). A stage that added the loss of the wrong forward (a
/// reference or no_grad pass), with the wrong mask, weight or coefficient, or not at all, fails.
/// </remarks>
public sealed class RouterLossStageTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-router-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    const double Coef = 0.5;
    const int Pad = 0;
    static readonly int[] Prompt = [1, 30, 19, 40, 31, 17];

    /// <summary>Step sizes linear in the gradient: lr/eps = 1, no decay, no clipping, no warm-up.</summary>
    static OptimizerConfig Linear => new() { LearningRate = 1e6, Eps = 1e6, WeightDecay = 0, MaxGradNorm = 0, WarmupRatio = 0, Schedule = ScheduleKind.Constant };

    /// <summary>The fixture's folder with the router loss switched on or off in its config.json.</summary>
    string Model(string fixture, bool routerLoss)
    {
        var src = new HfFixture(fixture, "hf-wave3").Dir;
        var dir = Path.Combine(tmp, $"{fixture}-{routerLoss}");
        if (Directory.Exists(dir)) return dir;
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(src, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(src, "config.json")))!;
        config["output_router_logits"] = routerLoss;
        config["router_aux_loss_coef"] = Coef;
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        return dir;
    }

    /// <summary>
    /// The score model with a new head drawn from its own seeded generator, so every load in a test starts from the same
    /// head. (Seeding torch's process-wide generator would not do: tests in other classes run in parallel and draw from it,
    /// or reseed it, between the seed and the head's init; that made the on and off runs start from different heads.)
    /// </summary>
    ScoreModel ScoreModelWithHead(bool routerLoss, ulong seed)
    {
        var rm = HuggingFaceCheckpoint.LoadScoreModel(Model("mixtral_tiny", routerLoss), allowNewHead: true);
        using var generator = new Generator(seed);
        using (no_grad()) rm.score.weight!.copy_(randn(rm.score.weight.shape, generator: generator) * 0.02);
        return rm;
    }

    static Tensor[] Gates(nn.Module model) =>
        model.modules().OfType<SparseMoe>().Select(s => s.gate.weight!.detach().clone()).ToArray();

    /// <summary>
    /// ∂aux/∂W of every router weight, from a fresh forward of <paramref name="model"/> (training mode) on the sequences the
    /// test chose or caught; the loss is read back through the public <see cref="RouterBalanceLoss.Weighted"/> divided by
    /// the coefficient. (TorchSharp's forward hooks do not fire on a layer's direct <c>forward</c> call, so the gate
    /// outputs cannot be caught from outside.)
    /// </summary>
    static (Tensor[] Grads, double Aux) AuxGradient(nn.Module model, DecoderBody body, Tensor ids, Tensor mask)
    {
        var sparse = model.modules().OfType<SparseMoe>().ToList();
        model.train();
        body.Forward(ids, mask, Transformer.PositionsFromMask(mask));
        var aux = RouterBalanceLoss.Weighted(model)! / Coef;
        aux.backward();
        var grads = sparse.Select(s => s.gate.weight!.grad!.clone()).ToArray();
        return (grads, aux.item<float>());
    }

    /// <summary>The on-run's router weights minus the off-run's equal −(lr/eps)·coef·share·∂aux/∂W.</summary>
    static void AssertStepAddsTheRouterLoss(string what, Tensor[] on, Tensor[] off, Tensor[] auxGrads, double share = 1.0)
    {
        for (int i = 0; i < auxGrads.Length; i++)
        {
            var expected = -Coef * share * auxGrads[i];
            var actual = on[i] - off[i];
            double scale = expected.abs().max().item<float>();
            Assert.True(scale > 1e-4, $"{what}: the router loss has no gradient on layer {i}'s router ({scale})");
            double err = (actual - expected).abs().max().item<float>();
            Assert.True(err < 2e-3 * scale, $"{what}: layer {i} router step differs from coef × ∂aux/∂W by {err:E2} (scale {scale:E2})");
        }
    }

    static void AssertExpertLoad(IReadOnlyDictionary<string, double> row, int experts, string prefix = "")
    {
        var shares = Enumerable.Range(0, experts).Select(e => row[$"{prefix}expert_load/{e}"]).ToArray();
        Assert.Equal(1.0, shares.Sum(), 9);
        Assert.InRange(row[prefix + "expert_load_max"], shares.Max() - 1e-12, 1.0);
        Assert.InRange(row[prefix + "expert_load_min"], 0.0, shares.Min() + 1e-12);
    }

    [Theory]
    [InlineData("mixtral_tiny")]
    [InlineData("qwen2moe_tiny")]
    public void Sft_step_adds_coef_times_the_router_loss_of_its_padded_batch(string fixture)
    {
        var examples = new[] { new[] { 11, 12, 13, 2 }, new[] { 21, 22, 2 } }
            .Select(t => new SftExample([.. Prompt, .. t], [.. Prompt.Select(_ => false), .. t.Select(_ => true)])).ToList();
        var logs = new Dictionary<bool, MetricsLog>();
        var after = new Dictionary<bool, Tensor[]>();
        foreach (bool on in new[] { true, false })
        {
            using var policy = HuggingFaceCheckpoint.LoadCausalLM(Model(fixture, on));
            logs[on] = new MetricsLog(null);
            new SftTrainer(policy, new SftConfig { Epochs = 1, BatchSize = 2, Optimizer = Linear }, Pad) { Metrics = logs[on] }.Train(examples, []);
            after[on] = Gates(policy);
        }
        using var fresh = HuggingFaceCheckpoint.LoadCausalLM(Model(fixture, true));
        var batch = TokenBatch.RightPad(examples.Select(e => e.InputIds).ToList(), Pad, CPU);
        var (grads, aux) = AuxGradient(fresh, fresh.model, batch.Ids, batch.AttentionMask);
        AssertStepAddsTheRouterLoss($"{fixture} SFT", after[true], after[false], grads);
        var row = logs[true].Rows[0];
        Assert.Equal(aux, row["aux_loss"], 4);
        Assert.False(logs[false].Rows[0].ContainsKey("aux_loss"));
        AssertExpertLoad(row, fresh.Config.Moe!.NumExperts);
        AssertExpertLoad(logs[false].Rows[0], fresh.Config.Moe!.NumExperts);
    }

    [Fact]
    public void Reward_model_step_adds_coef_times_the_router_loss()
    {
        var groups = new[] { new[] { 11, 12, 2 }, new[] { 40, 41, 42, 43, 2 }, new[] { 11, 2 }, new[] { 50, 51, 2 } }
            .Chunk(2).Select(g => new RankedGroup(g.Select(r => Prompt.Concat(r).ToArray()).ToList())).ToList();
        var logs = new Dictionary<bool, MetricsLog>();
        var after = new Dictionary<bool, Tensor[]>();
        foreach (bool on in new[] { true, false })
        {
            using var rm = ScoreModelWithHead(on, seed: 3); // the same new score head in both runs
            logs[on] = new MetricsLog(null);
            new RewardTrainer(rm, new RewardConfig { Epochs = 1, PromptsPerBatch = 2, Optimizer = Linear }, Pad) { Metrics = logs[on] }.Train(groups, []);
            after[on] = Gates(rm);
        }
        using var fresh = ScoreModelWithHead(true, seed: 3);
        var batch = TokenBatch.RightPad(groups.SelectMany(g => g.Sequences).ToList(), Pad, CPU);
        var (grads, aux) = AuxGradient(fresh, fresh.model, batch.Ids, batch.AttentionMask);
        AssertStepAddsTheRouterLoss("RM", after[true], after[false], grads);
        Assert.Equal(aux, logs[true].Rows[0]["aux_loss"], 4);
        AssertExpertLoad(logs[true].Rows[0], fresh.Config.Moe!.NumExperts);
    }

    [Fact]
    public void Dpo_step_adds_coef_times_the_router_loss_of_its_concatenated_chosen_and_rejected_forward()
    {
        var pairs = new[] { (new[] { 11, 12, 13, 2 }, new[] { 40, 41, 2 }), (new[] { 21, 2 }, new[] { 50, 51, 52, 53, 54, 2 }) }
            .Select(p => new PreferenceExample(Prompt, p.Item1, p.Item2)).ToList();
        var logs = new Dictionary<bool, MetricsLog>();
        var after = new Dictionary<bool, Tensor[]>();
        foreach (bool on in new[] { true, false })
        {
            using var policy = HuggingFaceCheckpoint.LoadCausalLM(Model("mixtral_tiny", on));
            using var reference = policy.Clone();
            logs[on] = new MetricsLog(null);
            new PreferenceTrainer(policy, reference, new DpoConfig { Epochs = 1, BatchSize = 2, Optimizer = Linear }, Pad) { Metrics = logs[on] }.Train(pairs, []);
            after[on] = Gates(policy);
        }
        using var fresh = HuggingFaceCheckpoint.LoadCausalLM(Model("mixtral_tiny", true));
        // TRL's concatenated batch: every prompt + chosen, then every prompt + rejected.
        var sequences = pairs.Select(p => p.PromptIds.Concat(p.ChosenIds).ToArray()).Concat(pairs.Select(p => p.PromptIds.Concat(p.RejectedIds).ToArray())).ToList();
        var batch = TokenBatch.RightPad(sequences, Pad, CPU);
        var (grads, aux) = AuxGradient(fresh, fresh.model, batch.Ids, batch.AttentionMask);
        AssertStepAddsTheRouterLoss("DPO", after[true], after[false], grads);
        Assert.Equal(aux, logs[true].Rows[0]["aux_loss"], 4);
        AssertExpertLoad(logs[true].Rows[0], fresh.Config.Moe!.NumExperts);
    }

    [Fact]
    public void Ppo_step_adds_the_router_loss_to_the_actor_and_to_a_critic_with_experts()
    {
        var prompts = Enumerable.Range(0, 4).Select(i => (int[])[1, 30 + i, 19]).ToArray();
        var logs = new Dictionary<bool, MetricsLog>();
        var (actorAfter, criticAfter) = (new Dictionary<bool, Tensor[]>(), new Dictionary<bool, Tensor[]>());
        Tensor? sequences = null, attention = null;
        foreach (bool on in new[] { true, false })
        {
            using var policy = HuggingFaceCheckpoint.LoadCausalLM(Model("mixtral_tiny", on));
            using var reference = policy.Clone();
            using var critic = ScoreModelWithHead(on, seed: 4);
            Tensor Score(SampleBatch b)
            {
                if (on) (sequences, attention) = (b.Sequences.clone().DetachFromDisposeScope(), b.AttentionMask.clone().DetachFromDisposeScope());
                var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
                return (response.eq(11).to(float32) * b.ResponseMask).sum(1) + arange(b.Sequences.shape[0], dtype: float32);
            }
            logs[on] = new MetricsLog(null);
            new PpoTrainer(policy, reference, critic, Score, new Sampler(policy) { EosIds = [2], PadId = Pad }, Pad, new PpoConfig
            {
                Steps = 1, RolloutBatchSize = 4, MiniBatchSize = 4, PpoEpochs = 1, MaxNewTokens = 4, Critic = CriticKind.SeparateFromRewardModel,
                ActorOptimizer = Linear, CriticOptimizer = Linear,
            }) { Metrics = logs[on] }.Train(prompts, []);
            (actorAfter[on], criticAfter[on]) = (Gates(policy), Gates(critic));
        }
        Assert.NotNull(sequences);
        using var fresh = HuggingFaceCheckpoint.LoadCausalLM(Model("mixtral_tiny", true));
        var (grads, aux) = AuxGradient(fresh, fresh.model, sequences!, attention!);
        AssertStepAddsTheRouterLoss("PPO actor", actorAfter[true], actorAfter[false], grads);
        // The critic's body starts as the policy's (both from the same folder), so its router gradient is the same.
        AssertStepAddsTheRouterLoss("PPO critic", criticAfter[true], criticAfter[false], grads);
        var row = logs[true].Rows[0];
        Assert.Equal(aux, row["aux_loss"], 4);
        Assert.Equal(aux, row["critic/aux_loss"], 4);
        AssertExpertLoad(row, fresh.Config.Moe!.NumExperts);
        AssertExpertLoad(row, fresh.Config.Moe!.NumExperts, "critic/");
    }

    [Fact]
    public void Grpo_step_adds_coef_times_the_router_loss_of_its_rollouts()
    {
        var prompts = Enumerable.Range(0, 2).Select(i => (int[])[1, 30 + i, 19]).ToArray();
        var logs = new Dictionary<bool, MetricsLog>();
        var after = new Dictionary<bool, Tensor[]>();
        Tensor? sequences = null, attention = null;
        foreach (bool on in new[] { true, false })
        {
            using var policy = HuggingFaceCheckpoint.LoadCausalLM(Model("mixtral_tiny", on));
            using var reference = policy.Clone();
            Tensor Score(SampleBatch b)
            {
                if (on) (sequences, attention) = (b.Sequences.clone().DetachFromDisposeScope(), b.AttentionMask.clone().DetachFromDisposeScope());
                return arange(b.Sequences.shape[0], dtype: float32);
            }
            logs[on] = new MetricsLog(null);
            new GroupRlTrainer(policy, reference, Score, new Sampler(policy) { EosIds = [2], PadId = Pad }, new GroupRlConfig
            {
                Steps = 1, PromptsPerStep = 2, GroupSize = 2, MiniBatchSize = 4, MaxNewTokens = 4, Optimizer = Linear,
            }) { Metrics = logs[on] }.Train(prompts);
            after[on] = Gates(policy);
        }
        using var fresh = HuggingFaceCheckpoint.LoadCausalLM(Model("mixtral_tiny", true));
        var (grads, aux) = AuxGradient(fresh, fresh.model, sequences!, attention!);
        AssertStepAddsTheRouterLoss("GRPO", after[true], after[false], grads);
        Assert.Equal(aux, logs[true].Rows[0]["aux_loss"], 4);
        AssertExpertLoad(logs[true].Rows[0], fresh.Config.Moe!.NumExperts);
    }

    [Fact]
    public void Rejection_sampling_rounds_log_the_expert_load_and_router_loss_of_their_sft()
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(Model("mixtral_tiny", true));
        var log = new MetricsLog(null);
        Tensor Score(SampleBatch b) => arange(b.Sequences.shape[0], dtype: float32);
        new RejectionSamplingTrainer(policy, Score, new Sampler(policy) { EosIds = [2], PadId = Pad }, Pad, 2, new RejectionSamplingConfig
        {
            Iterations = 1, PromptsPerIteration = 2, SamplesPerPrompt = 2, MaxNewTokens = 3,
            Sft = new SftConfig { Epochs = 1, BatchSize = 2, Optimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } },
        }) { Metrics = log }.Train(Enumerable.Range(0, 2).Select(i => (int[])[1, 30 + i]).ToArray());
        var row = Assert.Single(log.Rows);
        AssertExpertLoad(row, policy.Config.Moe!.NumExperts);
        Assert.True(row["aux_loss"] > 0);
    }
}
