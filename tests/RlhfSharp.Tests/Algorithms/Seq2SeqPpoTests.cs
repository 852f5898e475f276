using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Nlpo;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models.T5;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// PPO with a T5 policy on the shared <see cref="PpoTrainer"/> (RL4LMs seq2seq policy, TRL AutoModelForSeq2SeqLMWithValueHead):
/// the prompt to the encoder, actions = decoder tokens, value head on the decoder's last hidden state. The decoder's token
/// log-probs and that hidden state are checked against transformers v4.44 (fixtures/hf-t5).
/// </summary>
public sealed class Seq2SeqPpoTests
{
    static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated");
    static JsonNode Forward0 => JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!["forward"]![0]!;

    [Fact]
    public void The_actor_scores_decoder_tokens_as_transformers_and_its_value_head_reads_the_final_decoder_state()
    {
        using var scope = NewDisposeScope();
        var f = Forward0;
        var ids = HfFixture.Ints(f["input_ids"])!; var mask = HfFixture.Ints(f["attention_mask"])!;
        var dec = HfFixture.Ints(f["decoder_input_ids"])!; var decMask = HfFixture.Ints(f["decoder_attention_mask"])!;
        long n = dec.shape[1] - 1;
        // A rollout row: the right-padded encoder prompt, then the decoder tokens after the start token (Seq2SeqSampler.Rollouts).
        var seq = cat([ids, dec.narrow(1, 1, n)], 1);
        var attention = cat([mask, decMask.narrow(1, 1, n)], 1);
        var actor = new Seq2SeqActor(T5Checkpoint.Load(Dir));
        using var _ = no_grad();
        var forward = actor.Forward(seq, attention, zeros_like(seq), (int)ids.shape[1], withHidden: true);
        var logprobs = TokenLogprobs.Of(forward.Logits, forward.Tokens).narrow(1, forward.Start, n);
        HfFixture.AssertClose(HfFixture.Floats(f["token_logprobs"]!), logprobs, HfFixture.Ints(f["token_logprobs_mask"]), "decoder token log-probs");
        // TRL's v_head reads decoder_hidden_states[-1] (after the final norm) at the position emitting each token.
        var states = f["decoder_hidden_states"]!.AsArray();
        HfFixture.AssertClose(HfFixture.Floats(states[^1]!), forward.Hidden!, HfFixture.Ints(f["compare_mask"]), "value head input");
    }

    internal static int[][] Prompts()
    {
        var f = Forward0;
        var ids = HfFixture.IntRows(f["input_ids"]!); var mask = HfFixture.IntRows(f["attention_mask"]!);
        var rows = ids.Select((r, i) => r.Where((_, j) => mask[i][j] == 1).Select(x => (int)x).ToArray()).ToList();
        return Enumerable.Range(0, 8).Select(i => i % 2 == 0 ? rows[i % 2] : rows[1][..(2 + i % 3)]).ToArray();
    }

    /// <summary>The share of response tokens with an even id: something the policy can learn in a few steps.</summary>
    internal static Tensor Score(SampleBatch b)
    {
        var response = b.Sequences.narrow(1, b.PromptLength, b.ResponseMask.shape[1]);
        return (response.remainder(2).eq(0).to(float32) * b.ResponseMask).sum(1) / b.ResponseMask.sum(1).clamp_min(1) * 5;
    }

    static PpoConfig Config(int steps) => new()
    {
        Steps = steps, RolloutBatchSize = 8, MiniBatchSize = 4, PpoEpochs = 2, MaxNewTokens = 8, PtxCoef = 0, Critic = CriticKind.ValueHead,
        SaveEvery = 0, ActorOptimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
    };

    [Fact]
    public void Ppo_on_t5_starts_at_zero_kl_trains_on_the_sampled_decoder_tokens_and_raises_the_reward()
    {
        using var scope = NewDisposeScope();
        using var policy = T5Checkpoint.Load(Dir);
        using var reference = T5Checkpoint.Load(Dir);
        var sampler = new Seq2SeqSampler(policy);
        var log = new MetricsLog(null);
        var trainer = new PpoTrainer(new Seq2SeqActor(policy, sampler), new Seq2SeqActor(reference), null, Score, sampler.PadId, Config(20) with { ActorOptimizer = Config(1).ActorOptimizer with { LearningRate = 2e-2 } }) { Metrics = log };
        trainer.Train(Prompts(), []);
        var rows = log.Rows;
        Assert.Equal(0, rows[0]["kl"]); // the first rollouts: policy = frozen reference, so every per-token KL is 0
        Assert.True(rows[^1]["kl"] > 0, $"kl {rows[^1]["kl"]}");
        // The trainer's decoder forward gives the sampler's own log-probs of the tokens it drew: same positions, same model.
        Assert.All(rows, r => Assert.True(r["logprobs_diff_sampler"] < 1e-4, $"logprobs_diff_sampler {r["logprobs_diff_sampler"]}"));
        Assert.All(rows, r => Assert.True(double.IsFinite(r["value_loss"]) && double.IsFinite(r["explained_variance"])));
        double first = rows.Take(3).Average(r => r["reward_mean"]), last = rows.TakeLast(3).Average(r => r["reward_mean"]);
        Assert.True(last > first + 0.3, $"reward {first:F3} → {last:F3}");
    }

    [Fact]
    public void Lora_ppo_on_t5_uses_the_adapters_off_model_as_reference_and_trains_only_the_adapters()
    {
        using var scope = NewDisposeScope();
        using var policy = T5Checkpoint.Load(Dir);
        var before = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        manual_seed(5);
        T5Lora.Attach(policy, new LoraConfig { R = 4, Alpha = 16 });
        var sampler = new Seq2SeqSampler(policy);
        var log = new MetricsLog(null);
        var trainer = new PpoTrainer(new Seq2SeqActor(policy, sampler), new Seq2SeqActor(policy, adaptersOff: true), null, Score, sampler.PadId, Config(3)) { Metrics = log };
        trainer.Train(Prompts(), []);
        Assert.Equal(0, log.Rows[0]["kl"]); // B = 0 at first: adapters on = adapters off
        Assert.True(log.Rows[^1]["kl"] > 0, $"kl {log.Rows[^1]["kl"]}");
        foreach (var (name, p) in policy.named_parameters().Where(p => !p.name.Contains("_lora")))
            Assert.True(before[name].eq(p).all().item<bool>(), $"{name} changed under LoRA");
        Assert.All(LoraModel.Adapters(policy), a => Assert.Equal(0, a.Adapter.Dropout)); // old and new log-probs of one function
    }

    [Fact]
    public void What_the_seq2seq_actor_cannot_take_is_refused_by_name()
    {
        using var scope = NewDisposeScope();
        using var policy = T5Checkpoint.Load(Dir);
        var actor = new Seq2SeqActor(policy, new Seq2SeqSampler(policy));
        var e = Assert.Throws<RlhfException>(() => new PpoTrainer(actor, new Seq2SeqActor(policy, adaptersOff: true), null, Score, 0, Config(1) with { Critic = CriticKind.SeparateFromRewardModel }));
        Assert.Contains("no critic model", e.Message);
        e = Assert.Throws<RlhfException>(() => new PpoTrainer(actor, actor, null, Score, 0, Config(1) with { LogprobChunkSize = 4 }));
        Assert.Contains("logprob_chunk_size", e.Message);
        // Decoder-only demonstrations are not an encoder-decoder's PPO-ptx data.
        var trainer = new PpoTrainer(actor, new Seq2SeqActor(policy, adaptersOff: true), null, Score, 0, Config(1) with { PtxCoef = 0.5 });
        e = Assert.Throws<RlhfException>(() => trainer.Train(Prompts(), [new RlhfSharp.Data.SftExample([1, 2, 3], [false, true, true])]));
        Assert.Contains("Seq2SeqPtxExamples", e.Message);
    }

    [Fact]
    public void Nlpo_on_t5_samples_inside_the_masking_policys_top_p_set_and_trains_on_that_masked_distribution()
    {
        using var scope = NewDisposeScope();
        using var policy = T5Checkpoint.Load(Dir);
        using var masking = new Seq2SeqMaskingPolicy(policy, new NlpoConfig { TopMask = 0.3, MinTokensToKeep = 1, TargetUpdateIterations = 2 }, [1, 0]);
        manual_seed(3);
        using (no_grad()) foreach (var w in policy.parameters()) w.add_(randn_like(w) * 0.05); // the actor drifts from its masking copy
        var sampler = new Seq2SeqSampler(policy);
        var options = new SamplingOptions { MaxNewTokens = 8, Seed = 11 };
        using var recorder = masking.NewRollout();
        using var rollout = sampler.Rollouts(Prompts(), options, tokenMask: recorder);
        int p = rollout.PromptLength, n = (int)rollout.ResponseMask.shape[1];
        var allowed = recorder.Recorded();
        var tokens = rollout.Sequences.narrow(1, p, n);
        var valid = rollout.ResponseMask.gt(0.5);
        Assert.Equal([8L, n, policy.Config.VocabSize], allowed.shape);
        Assert.True(allowed.to(float32).sum(-1).mean().item<float>() < policy.Config.VocabSize / 2.0, "the mask must bite");
        var taken = allowed.gather(2, tokens.unsqueeze(-1)).squeeze(-1);
        Assert.True(taken.logical_or(valid.logical_not()).all().item<bool>(), "a rollout token outside the top-p set");
        // The sets recorded step by step (decoder cache) are the masking policy's top-p sets of the finished rows.
        var recomputed = masking.Allowed(rollout.Sequences, rollout.AttentionMask, p);
        Assert.True(recomputed.eq(allowed).all(-1).logical_or(valid.logical_not()).all().item<bool>(), "recorded mask differs from the teacher-forced one");
        // Control: without the mask the same sampling leaves the set, so the assertions above can fail.
        using var free = sampler.Rollouts(Prompts(), options);
        int m = (int)free.ResponseMask.shape[1];
        var freeTaken = masking.Allowed(free.Sequences, free.AttentionMask, p).gather(2, free.Sequences.narrow(1, p, m).unsqueeze(-1)).squeeze(-1);
        Assert.False(freeTaken.logical_or(free.ResponseMask.lt(0.5)).all().item<bool>(), "unmasked sampling never left the set");

        using var reference = T5Checkpoint.Load(Dir);
        var log = new MetricsLog(null);
        var trainer = new PpoTrainer(new Seq2SeqActor(policy, sampler), new Seq2SeqActor(reference), null, Score, sampler.PadId, Config(4))
        {
            Metrics = log, ActionSpace = masking, Stage = "nlpo",
        };
        trainer.Train(Prompts(), []);
        // Old log-probs are RL4LMs' masked log-probs (MaskableCategorical: not renormalised), so they differ from the
        // sampler's, drawn from the renormalised set, by the log of the allowed set's mass: far more than float noise.
        Assert.All(log.Rows, r => Assert.True(r["logprobs_diff_sampler"] > 1e-2 && double.IsFinite(r["policy_loss"]), $"logprobs_diff_sampler {r["logprobs_diff_sampler"]}"));
        Assert.Equal(2, masking.Refreshes); // after batches 2 and 4 (RL4LMs target_update_iterations)
    }
}
