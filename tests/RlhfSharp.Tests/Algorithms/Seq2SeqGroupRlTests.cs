using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>
/// The group-RL family (GRPO, RLOO, REINFORCE++, REINFORCE++-baseline, ReMax) with a T5 policy on the shared
/// <see cref="GroupRlTrainer"/> through <see cref="Seq2SeqActor"/>: prompts to the encoder, the G samples of a group from
/// the decoder. The trainer's decoder log-probs are checked against transformers v4.44 (fixtures/hf-t5), and against the
/// sampler's own (cached decoder) log-probs in every run.
/// </summary>
public sealed class Seq2SeqGroupRlTests
{
    static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated");

    static GroupRlConfig Tiny(AdvantageEstimator estimator, int steps) => new()
    {
        Estimator = estimator, Steps = steps, PromptsPerStep = 4, GroupSize = 4, MaxNewTokens = 8, MiniBatchSize = 8, Epochs = 2,
        RewardKlCoef = 0.01, Beta = estimator == AdvantageEstimator.Grpo ? 0.01 : 0.0, SaveEvery = 0,
        Optimizer = new OptimizerConfig { LearningRate = estimator == AdvantageEstimator.Remax ? 5e-3 : 2e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
    };

    [Fact]
    public void The_trainers_response_logprobs_of_t5_rows_are_transformers_decoder_token_logprobs()
    {
        using var scope = NewDisposeScope();
        var f = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!["forward"]![0]!;
        var ids = HfFixture.Ints(f["input_ids"])!; var mask = HfFixture.Ints(f["attention_mask"])!;
        var dec = HfFixture.Ints(f["decoder_input_ids"])!; var decMask = HfFixture.Ints(f["decoder_attention_mask"])!;
        int n = (int)dec.shape[1] - 1, p = (int)ids.shape[1];
        // A rollout row: the right-padded encoder prompt, then the decoder tokens after the start token.
        var seq = cat([ids, dec.narrow(1, 1, n)], 1);
        var attention = cat([mask, decMask.narrow(1, 1, n)], 1);
        using var model = T5Checkpoint.Load(Dir);
        using var _ = no_grad();
        var (logprobs, _) = GroupRlTrainer.ResponseLogprobs(new Seq2SeqActor(model), seq, attention, zeros_like(seq), p, n, temperature: 1.0);
        HfFixture.AssertClose(HfFixture.Floats(f["token_logprobs"]!), logprobs, HfFixture.Ints(f["token_logprobs_mask"]), "decoder token log-probs");
    }

    [Fact]
    public void Grpo_on_t5_starts_at_zero_kl_recomputes_the_samplers_logprobs_and_raises_the_reward()
    {
        using var scope = NewDisposeScope();
        using var policy = T5Checkpoint.Load(Dir);
        using var reference = T5Checkpoint.Load(Dir);
        var log = new MetricsLog(null);
        new GroupRlTrainer(new Seq2SeqActor(policy, new Seq2SeqSampler(policy)), new Seq2SeqActor(reference), Seq2SeqPpoTests.Score, Tiny(AdvantageEstimator.Grpo, 12))
            { Metrics = log }.Train(Seq2SeqPpoTests.Prompts());
        var rows = log.Rows;
        Assert.Equal(0, rows[0]["kl"]); // policy = frozen reference on the first rollouts
        Assert.True(rows[^1]["kl"] > 0, $"kl {rows[^1]["kl"]}");
        // The trainer's teacher-forced decoder gives the log-probs the cached sampler drew the group's tokens with.
        Assert.All(rows, r => Assert.True(r["logprobs_diff_sampler"] < 1e-4, $"logprobs_diff_sampler {r["logprobs_diff_sampler"]}"));
        Assert.All(rows, r => Assert.True(r["kl_loss"] >= 0 && double.IsFinite(r["entropy"]) && double.IsFinite(r["grad_norm"])));
        double first = rows.Take(3).Average(r => r["reward_mean"]), last = rows.TakeLast(3).Average(r => r["reward_mean"]);
        Assert.True(last > first + 0.3, $"reward {first:F3} → {last:F3}");
    }

    [Theory]
    [InlineData(AdvantageEstimator.Rloo)]
    [InlineData(AdvantageEstimator.ReinforcePp)]
    [InlineData(AdvantageEstimator.ReinforcePpBaseline)]
    [InlineData(AdvantageEstimator.Remax)]
    public void Every_other_estimator_trains_a_t5_policy_on_its_decoder_tokens(AdvantageEstimator estimator)
    {
        using var scope = NewDisposeScope();
        using var policy = T5Checkpoint.Load(Dir);
        var before = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using var reference = T5Checkpoint.Load(Dir);
        var log = new MetricsLog(null);
        new GroupRlTrainer(new Seq2SeqActor(policy, new Seq2SeqSampler(policy)), new Seq2SeqActor(reference), Seq2SeqPpoTests.Score, Tiny(estimator, 3))
            { Metrics = log }.Train(Seq2SeqPpoTests.Prompts());
        Assert.Equal(3, log.Rows.Count);
        Assert.Equal(0, log.Rows[0]["kl"]);
        Assert.All(log.Rows, r => Assert.True(r["logprobs_diff_sampler"] < 1e-4, $"{estimator}: logprobs_diff_sampler {r["logprobs_diff_sampler"]}"));
        foreach (var key in new[] { "advantage_std", "policy_loss", "clipfrac", "entropy", "grad_norm", "response_length" })
            Assert.All(log.Rows, r => Assert.True(double.IsFinite(r[key]), $"{estimator}: {key} = {r[key]}"));
        if (estimator == AdvantageEstimator.Remax) Assert.All(log.Rows, r => Assert.True(double.IsFinite(r["greedy_score_mean"])));
        Assert.Contains(policy.named_parameters(), p => !before[p.name].eq(p.parameter).all().item<bool>());
    }

    [Fact]
    public void Lora_grpo_on_t5_uses_the_adapters_off_model_as_reference_and_trains_only_the_adapters()
    {
        using var scope = NewDisposeScope();
        using var policy = T5Checkpoint.Load(Dir);
        var before = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        manual_seed(5);
        T5Lora.Attach(policy, new LoraConfig { R = 4, Alpha = 16 });
        var log = new MetricsLog(null);
        new GroupRlTrainer(new Seq2SeqActor(policy, new Seq2SeqSampler(policy)), new Seq2SeqActor(policy, adaptersOff: true), Seq2SeqPpoTests.Score, Tiny(AdvantageEstimator.Grpo, 3))
            { Metrics = log }.Train(Seq2SeqPpoTests.Prompts());
        Assert.Equal(0, log.Rows[0]["kl"]); // B = 0 at first: adapters on = adapters off
        Assert.True(log.Rows[^1]["kl"] > 0, $"kl {log.Rows[^1]["kl"]}");
        foreach (var (name, p) in policy.named_parameters().Where(p => !p.name.Contains("_lora")))
            Assert.True(before[name].eq(p).all().item<bool>(), $"{name} changed under LoRA");
    }
}
