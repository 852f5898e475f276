using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Common;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Algorithms.Sft;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// PPO on a T5 policy with what the decoder-only path has: RL4LMs' separate T5 value model as the critic (pinned by
/// fixtures/hf-t5/ppo/generate_critic.py, PyTorch 1.13), PPO-ptx as the seq2seq SFT loss, and the EMA of the actor.
/// </summary>
public sealed class Seq2SeqPpoCriticTests
{
    static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5");
    static string Dir => Path.Combine(Fixtures, "t5v11_tiny_gated");

    static JsonObject Case(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "ppo", "expected_critic.json")))!["cases"]!
        .AsArray().Select(c => (JsonObject)c!).Single(c => (string)c["case"]! == name);

    static Tensor Rows(JsonNode node) => tensor(node.AsArray().SelectMany(r => r!.AsArray().Select(v => (float)v!.GetValue<double>())).ToArray(),
        [node.AsArray().Count, node[0]!.AsArray().Count]);

    [Theory]
    [InlineData("t5_tiny")]
    [InlineData("t5v11_tiny_gated")]
    public void The_separate_t5_critic_gives_rl4lms_values_and_pytorchs_clipped_value_loss_and_gradient(string name)
    {
        using var scope = NewDisposeScope();
        var c = Case(name);
        using var critic = Seq2SeqCritic.Load(Path.Combine(Fixtures, name), seed: 1);
        Assert.Null(critic.transformer.lm_head); // the value model's logits are never read: no LM head to train
        using (no_grad()) critic.value_head.summary.weight!.copy_(tensor(c["value_head_weight"]!.AsArray().Select(v => (float)v!.GetValue<double>()).ToArray()).unsqueeze(0));
        Assert.Null(critic.value_head.summary.bias); // RL4LMs: nn.Linear(hidden_size, 1, bias=False)

        var ids = HfFixture.Ints(c["input_ids"])!; var mask = HfFixture.Ints(c["attention_mask"])!;
        var response = HfFixture.Ints(c["response"])!; var responseMask = Rows(c["response_mask"]!);
        int p = (int)ids.shape[1], n = (int)response.shape[1];
        // A rollout row: the right-padded encoder prompt, then the response padded after its EOS (Seq2SeqSampler.Rollouts).
        var seq = cat([ids, response], 1);
        var attention = cat([mask, responseMask.to(int64)], 1);
        critic.train();
        var values = critic.Values(seq, attention, zeros_like(seq), p, n);
        HfFixture.AssertClose(Rows(c["values"]!), values, null, "values");

        var loss = PpoLoss.Value(values * responseMask, Rows(c["old_values"]!), Rows(c["returns"]!), responseMask, 0.2, LossReduction.TokenMean);
        Assert.Equal(c["value_loss"]!.GetValue<double>(), loss.Loss.item<float>(), 5);
        Assert.Equal(c["value_clipfrac"]!.GetValue<double>(), loss.ClipFraction.item<float>(), 5);
        Assert.True(c["value_clipfrac"]!.GetValue<double>() is > 0 and < 1); // both branches of the max are taken
        loss.Loss.backward();
        // The gradient reaches the whole T5 body, not only the head.
        var grads = critic.parameters().Select(q => q.grad).ToList();
        Assert.All(grads, g => Assert.NotNull(g));
        double norm = Math.Sqrt(grads.Sum(g => g!.to(float64).square().sum().item<double>()));
        Assert.Equal(c["grad_norm"]!.GetValue<double>(), norm, 1e-4 * c["grad_norm"]!.GetValue<double>());
        HfFixture.AssertClose(tensor(c["value_head_grad"]!.AsArray().Select(v => (float)v!.GetValue<double>()).ToArray()).unsqueeze(0),
            critic.value_head.summary.weight!.grad!, null, "value head gradient", atol: 1e-5, rtol: 1e-4);
    }

    static PpoConfig Config(int steps, int miniBatch = 4, int epochs = 2) => new()
    {
        Steps = steps, RolloutBatchSize = 8, MiniBatchSize = miniBatch, PpoEpochs = epochs, MaxNewTokens = 8, PtxCoef = 0, Critic = CriticKind.ValueHead,
        SaveEvery = 0, ActorOptimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
        CriticOptimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
    };

    static Dictionary<string, Tensor> Snapshot(nn.Module m) => m.named_parameters().ToDictionary(q => q.name, q => q.parameter.detach().clone());

    [Fact]
    public void Ppo_on_t5_with_a_separate_critic_trains_that_second_t5_on_the_values_it_gave_the_rollouts()
    {
        using var scope = NewDisposeScope();
        using var policy = T5Checkpoint.Load(Dir);
        using var reference = T5Checkpoint.Load(Dir);
        using var critic = Seq2SeqCritic.Load(Dir, seed: 7);
        using var criticAtStart = Seq2SeqCritic.Load(Dir, seed: 7); // the same start, kept to recompute the rollout values
        // Load seeds torch's global generator before drawing the value head, and parallel tests draw from that generator
        // too, so the two heads are made equal here rather than trusted to be.
        using (no_grad()) criticAtStart.value_head.summary.weight!.copy_(critic.value_head.summary.weight!);
        var policyBefore = Snapshot(policy); var criticBefore = Snapshot(critic);
        Assert.All(criticBefore, kv => Assert.True(kv.Value.eq(criticAtStart.named_parameters().Single(q => q.name == kv.Key).parameter).all().item<bool>()));

        var sampler = new Seq2SeqSampler(policy);
        var log = new MetricsLog(null);
        (Tensor Sequences, Tensor AttentionMask, Tensor ResponseMask, int PromptLength)? firstRollout = null;
        Tensor? firstValues = null, firstOld = null;
        var trainer = new PpoTrainer(new Seq2SeqActor(policy, sampler), new Seq2SeqActor(reference), critic, Seq2SeqPpoTests.Score, sampler.PadId,
            Config(3, miniBatch: 8, epochs: 1) with { Critic = CriticKind.SeparateFromRewardModel })
        {
            Metrics = log,
            RolloutMetrics = b =>
            {
                firstRollout ??= (b.Sequences.clone().DetachFromDisposeScope(), b.AttentionMask.clone().DetachFromDisposeScope(),
                    b.ResponseMask.clone().DetachFromDisposeScope(), b.PromptLength);
                return new Dictionary<string, double>();
            },
            ValueLoss = (v, old, ret, m) =>
            {
                if (firstValues is null) { firstValues = v.detach().clone().DetachFromDisposeScope(); firstOld = old.clone().DetachFromDisposeScope(); }
                return PpoLoss.Value(v, old, ret, m, 0.2, LossReduction.TokenMean);
            },
        };
        trainer.Train(Seq2SeqPpoTests.Prompts(), []);

        // The experience's values are the separate critic's on the decoder (start token + response), masked to the response.
        var (seq, attention, responseMask, p) = firstRollout!.Value;
        int n = (int)responseMask.shape[1];
        Tensor expected;
        using (no_grad()) expected = criticAtStart.Values(seq, attention, zeros_like(seq), p, n) * responseMask;
        // One minibatch of every row, in the shuffled order: each experience row is the critic's value row of one rollout.
        var used = new HashSet<long>();
        for (long i = 0; i < firstOld!.shape[0]; i++)
        {
            var distance = (expected - firstOld[i].unsqueeze(0)).abs().amax(1);
            long match = distance.argmin().item<long>();
            Assert.True(distance[match].item<float>() < 1e-5, $"experience row {i}: no rollout row has these values ({distance.min().item<float>():E2})");
            used.Add(match);
        }
        Assert.Equal(Enumerable.Range(0, (int)expected.shape[0]).Select(i => (long)i), used.Order());
        // Before the critic's first step its values are those it gave the rollouts (same weights; no dropout).
        Assert.True((firstValues! * (firstOld.ne(0))).allclose(firstOld, rtol: 0, atol: 1e-6));

        Assert.All(log.Rows, r => Assert.True(double.IsFinite(r["value_loss"]) && r.ContainsKey("grad_norm_critic") && r["grad_norm_critic"] > 0, string.Join(", ", r.Keys)));
        // The critic's T5 body trained (not only its head), and the policy trained on its own loss.
        var criticAfter = Snapshot(critic);
        Assert.Contains(criticAfter.Keys, k => k.StartsWith("transformer.encoder.", StringComparison.Ordinal) && !criticAfter[k].eq(criticBefore[k]).all().item<bool>());
        Assert.False(criticAfter["value_head.summary.weight"].eq(criticBefore["value_head.summary.weight"]).all().item<bool>());
        Assert.Contains(policyBefore.Keys, k => !policyBefore[k].eq(policy.named_parameters().Single(q => q.name == k).parameter).all().item<bool>());
        // No value path on the policy: it has exactly its checkpoint's parameters.
        Assert.Equal(T5Checkpoint.Load(Dir).named_parameters().Select(q => q.name).Order(), policy.named_parameters().Select(q => q.name).Order());
    }

    [Fact]
    public void Ptx_on_t5_is_the_seq2seq_sft_loss_of_the_drawn_pair_and_pulls_the_policy_toward_it()
    {
        using var scope = NewDisposeScope();
        var pair = new Seq2SeqExample([17, 23, 5, 1], [41, 8, 30, 1]);
        double SftLoss(RlhfSharp.Models.T5.T5ForConditionalGeneration m, int pad) => new Seq2SeqSftTrainer(m, new SftConfig(), pad).Evaluate([pair])["eval_loss"];

        (double FirstPtxLoss, double SftAfter) Run(double ptxCoef, out double sftBefore)
        {
            using var policy = T5Checkpoint.Load(Dir);
            using var reference = T5Checkpoint.Load(Dir);
            var sampler = new Seq2SeqSampler(policy);
            sftBefore = SftLoss(policy, sampler.PadId);
            var log = new MetricsLog(null);
            var trainer = new PpoTrainer(new Seq2SeqActor(policy, sampler), new Seq2SeqActor(reference), null, Seq2SeqPpoTests.Score, sampler.PadId,
                Config(2, miniBatch: 8, epochs: 1) with { PtxCoef = ptxCoef }) { Metrics = log };
            // One pair: every draw of a minibatch is it, so its ptx term is that pair's SFT loss.
            trainer.Train(Seq2SeqPpoTests.Prompts(), new Seq2SeqPtxExamples(policy, [pair], sampler.PadId));
            return (ptxCoef > 0 ? log.Rows[0]["ptx_loss"] : double.NaN, SftLoss(policy, sampler.PadId));
        }
        var (ptxLoss, withPtx) = Run(5.0, out double before);
        Assert.Equal(before, ptxLoss, 1e-5); // the first update's ptx term is at the starting weights
        var (_, withoutPtx) = Run(0.0, out _);
        Assert.True(withPtx < withoutPtx - 0.1 && withPtx < before, $"SFT loss of the ptx pair: start {before:F4}, PPO {withoutPtx:F4}, PPO-ptx {withPtx:F4}");
    }

    [Fact]
    public void The_ema_of_a_t5_actor_after_one_optimizer_step_is_beta_start_plus_one_minus_beta_trained()
    {
        using var scope = NewDisposeScope();
        const double beta = 0.75;
        using var policy = T5Checkpoint.Load(Dir);
        using var reference = T5Checkpoint.Load(Dir);
        var start = Snapshot(policy);
        var sampler = new Seq2SeqSampler(policy);
        // One rollout batch, one minibatch, one epoch: one actor optimizer step θ0 → θ1.
        var trainer = new PpoTrainer(new Seq2SeqActor(policy, sampler), new Seq2SeqActor(reference), null, Seq2SeqPpoTests.Score, sampler.PadId,
            Config(1, miniBatch: 8, epochs: 1) with { EmaBeta = beta });
        trainer.Train(Seq2SeqPpoTests.Prompts(), []);
        Assert.Equal(1, trainer.EmaUpdates);
        var ema = Assert.IsType<RlhfSharp.Models.T5.T5ForConditionalGeneration>(trainer.Ema).named_parameters().ToDictionary(q => q.name, q => q.parameter);
        var trained = policy.named_parameters().ToDictionary(q => q.name, q => q.parameter);
        Assert.Equal(trained.Keys.Order(), ema.Keys.Order());
        Assert.Contains(trained.Keys, k => !trained[k].eq(start[k]).all().item<bool>());
        foreach (var (k, e) in ema)
            Assert.True(e.allclose(start[k] * beta + trained[k] * (1 - beta), rtol: 1e-5, atol: 1e-7), $"{k}: EMA ≠ β·θ0 + (1−β)·θ1");
    }
}
