using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Models;
using RlhfSharp.Tests.Cli;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>The offline preference trainer, a few steps on the real stories260K model.</summary>
public sealed class PreferenceTrainerTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-pref-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static CausalLM Stories() => Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);

    // "Once upon a time" → chosen: a fixed odd pattern; rejected: random tokens of a different length.
    static readonly int[] Prompt = [1, 403, 407, 261, 378];
    static readonly int[] Chosen = [300, 301, 302, 303, 304, 305, 2];

    static List<PreferenceExample> Pairs(int n, int seed = 1)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => new PreferenceExample(Prompt, Chosen,
            [.. Enumerable.Range(0, 4 + rng.Next(5)).Select(_ => 270 + rng.Next(20)), 2])).ToList();
    }

    static OptimizerConfig Fast => new() { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant };

    /// <summary>A reference that differs from the policy, so the log-ratios are not all zero.</summary>
    static CausalLM Perturbed(CausalLM policy)
    {
        var reference = policy.Clone();
        using var _ = no_grad();
        var g = new TorchSharp.torch.Generator(7);
        foreach (var p in reference.parameters()) p.add_(randn(p.shape, generator: g) * 0.02);
        return reference;
    }

    /// <summary>Summed log-probs of the completion, one sequence per forward, read off log_softmax.</summary>
    static double HandLogp(CausalLM model, int[] prompt, int[] completion)
    {
        using var _ = no_grad();
        int[] all = [.. prompt, .. completion];
        var lp = model.Forward(tensor(all.Select(x => (long)x).ToArray()).unsqueeze(0)).log_softmax(-1)[0];
        double sum = 0;
        for (int t = prompt.Length; t < all.Length; t++) sum += lp[t - 1, all[t]].item<float>();
        return sum;
    }

    [Theory]
    [InlineData(PreferenceLossKind.Sigmoid)]
    [InlineData(PreferenceLossKind.Ipo)]
    [InlineData(PreferenceLossKind.Cdpo)]
    [InlineData(PreferenceLossKind.Simpo)]
    [InlineData(PreferenceLossKind.Orpo)]
    public void Training_on_a_fixed_chosen_pattern_raises_reward_margin_and_accuracy(PreferenceLossKind loss)
    {
        using var policy = Stories();
        var config = new DpoConfig { Loss = loss, Epochs = 3, BatchSize = 4, LabelSmoothing = loss == PreferenceLossKind.Cdpo ? 0.1 : 0, Optimizer = Fast };
        using var reference = config.NeedsReference ? policy.Clone() : null;
        var log = new MetricsLog(null);
        var trainer = new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log };
        var pairs = Pairs(8);
        var before = trainer.Evaluate(pairs);
        var after = trainer.Train(pairs, pairs);
        Assert.Equal(6, log.Rows.Count);
        Assert.True(after["eval_margin"] > before["eval_margin"] + 0.1, $"{loss}: margin {before["eval_margin"]:F3} → {after["eval_margin"]:F3}");
        Assert.True(after["eval_loss"] < before["eval_loss"], $"{loss}: loss {before["eval_loss"]:F3} → {after["eval_loss"]:F3}");
        Assert.Equal(1.0, after["eval_accuracy"]);
        foreach (var key in new[] { "loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected", "grad_norm", "lr" })
            Assert.True(double.IsFinite(log.Rows[0][key]), key);
    }

    [Fact]
    public void Dpo_step_zero_loss_is_log_2_with_policy_as_reference_and_matches_DpoLoss_on_hand_gathered_logprobs()
    {
        var pairs = Pairs(4);
        var config = new DpoConfig { Epochs = 1, BatchSize = 4, Optimizer = Fast };
        using (var policy = Stories())
        using (var reference = policy.Clone())
        {
            var log = new MetricsLog(null);
            new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log }.Train(pairs, []);
            Assert.Equal(Math.Log(2), log.Rows[0]["loss"], 5);
            Assert.Equal(0.0, log.Rows[0]["rewards/margins"], 5);
        }
        using (var policy = Stories())
        using (var reference = Perturbed(policy))
        {
            var pc = pairs.Select(p => HandLogp(policy, p.PromptIds, p.ChosenIds)).Select(x => (float)x).ToArray();
            var pr = pairs.Select(p => HandLogp(policy, p.PromptIds, p.RejectedIds)).Select(x => (float)x).ToArray();
            var rc = pairs.Select(p => HandLogp(reference, p.PromptIds, p.ChosenIds)).Select(x => (float)x).ToArray();
            var rr = pairs.Select(p => HandLogp(reference, p.PromptIds, p.RejectedIds)).Select(x => (float)x).ToArray();
            double expected = DpoLoss.Sigmoid(tensor(pc), tensor(pr), tensor(rc), tensor(rr), 0.1).Loss.item<float>();
            Assert.NotEqual(Math.Log(2), expected, 3);
            var log = new MetricsLog(null);
            new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log }.Train(pairs, []);
            Assert.Equal(expected, log.Rows[0]["loss"], 4);
            Assert.Equal(pc.Average(), log.Rows[0]["logps/chosen"], 3);
        }
    }

    [Fact]
    public void Ipo_step_zero_loss_divides_log_ratios_by_length_and_logs_rewards_of_the_summed_log_ratios_as_trl()
    {
        // trl/trainer/dpo_trainer.py (f2cd577), loss_type="ipo": ((Δ_w/|y_w| − Δ_l/|y_l|) − 1/(2β))², chosen_rewards = β·Δ_w.
        var pairs = Pairs(4);
        var config = new DpoConfig { Loss = PreferenceLossKind.Ipo, Epochs = 1, BatchSize = 4, Optimizer = Fast };
        using var policy = Stories();
        using var reference = Perturbed(policy);
        double Ratio(int[] prompt, int[] completion) => HandLogp(policy, prompt, completion) - HandLogp(reference, prompt, completion);
        var dw = pairs.Select(p => Ratio(p.PromptIds, p.ChosenIds)).ToArray();
        var dl = pairs.Select(p => Ratio(p.PromptIds, p.RejectedIds)).ToArray();
        double loss = pairs.Select((p, i) => Math.Pow(dw[i] / p.ChosenIds.Length - dl[i] / p.RejectedIds.Length - 1 / (2 * 0.1), 2)).Average();
        var log = new MetricsLog(null);
        new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log }.Train(pairs, []);
        Assert.Equal(loss, log.Rows[0]["loss"], 3);
        Assert.Equal(dw.Average(d => 0.1 * d), log.Rows[0]["rewards/chosen"], 3);
        Assert.Equal(dl.Average(d => 0.1 * d), log.Rows[0]["rewards/rejected"], 3);
    }

    [Theory]
    [InlineData(PreferenceLossKind.Sigmoid)]
    [InlineData(PreferenceLossKind.Kto)]
    public void Precomputed_reference_logprobs_give_the_same_losses_as_on_the_fly(PreferenceLossKind loss)
    {
        List<Dictionary<string, double>> Run(bool precompute)
        {
            using var policy = Stories();
            using var reference = Perturbed(policy);
            var config = new DpoConfig { Loss = loss, Epochs = 2, BatchSize = 4, PrecomputeReferenceLogprobs = precompute, Optimizer = Fast };
            var log = new MetricsLog(null);
            var trainer = new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log };
            if (loss == PreferenceLossKind.Kto) trainer.TrainKto(Labeled(8), []);
            else trainer.Train(Pairs(8), []);
            return log.Rows;
        }
        var onTheFly = Run(false);
        var precomputed = Run(true);
        Assert.Equal(onTheFly.Count, precomputed.Count);
        Assert.Equal(onTheFly[0]["loss"], precomputed[0]["loss"], 5);
        Assert.Equal(onTheFly[^1]["loss"], precomputed[^1]["loss"], 4);
    }

    [Fact]
    public void Concatenated_chosen_and_rejected_forward_gives_the_same_logprobs_as_two_separate_forwards()
    {
        using var model = Stories();
        var pairs = Pairs(3);
        using var _ = no_grad();
        var chosen = pairs.Select(p => (p.PromptIds, p.ChosenIds)).ToList();
        var rejected = pairs.Select(p => (p.PromptIds, p.RejectedIds)).ToList();
        var together = SequenceLogprobs.Of(model, [.. chosen, .. rejected], padId: 0);
        var apart = cat([SequenceLogprobs.Of(model, chosen, 0).Sum, SequenceLogprobs.Of(model, rejected, 0).Sum], 0);
        Assert.True(together.Sum.allclose(apart, rtol: 1e-5, atol: 1e-4), string.Join(" ", together.Sum.data<float>().ToArray()) + " vs " + string.Join(" ", apart.data<float>().ToArray()));
        Assert.Equal(HandLogp(model, pairs[2].PromptIds, pairs[2].RejectedIds), together.Sum[5].item<float>(), 1e-3);
        Assert.Equal(pairs[1].RejectedIds.Length, together.Count[4].item<float>());
    }

    static List<LabeledExample> Labeled(int n) =>
        Pairs(n / 2).SelectMany(p => new[] { new LabeledExample(p.PromptIds, p.ChosenIds, true), new LabeledExample(p.PromptIds, p.RejectedIds, false) }).ToList();

    [Fact]
    public void Kto_training_separates_desirable_from_undesirable_rewards()
    {
        using var policy = Stories();
        using var reference = policy.Clone();
        var config = new DpoConfig { Loss = PreferenceLossKind.Kto, Epochs = 3, BatchSize = 4, Optimizer = Fast };
        var log = new MetricsLog(null);
        var trainer = new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log };
        var data = Labeled(8);
        var before = trainer.Evaluate(data);
        var after = trainer.TrainKto(data, data);
        Assert.Equal(0.0, before["eval_margin"], 5); // policy == reference: every implied reward is 0
        Assert.True(after["eval_margin"] > 0.1, $"margin {after["eval_margin"]:F3}");
        Assert.True(after["eval_loss"] < before["eval_loss"], $"loss {before["eval_loss"]:F3} → {after["eval_loss"]:F3}");
        Assert.All(log.Rows, r => Assert.True(double.IsFinite(r["kl"]) && r["kl"] >= 0));
    }

    [Fact]
    public void Kto_kl_pairs_shift_completions_by_one_within_each_batch()
    {
        Assert.Equal([3, 0, 1, 2, 5, 4], PreferenceTrainer.KlPartners([10, 11, 12, 13, 14, 15], 4));
    }

    [Fact]
    public void Dpo_command_runs_on_the_shipped_hh_sample()
    {
        string run = Path.Combine(tmp, "hh");
        var repo = new DirectoryInfo(AppContext.BaseDirectory);
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "RlhfSharp.slnx"))) repo = repo.Parent;
        string recipe = Path.Combine(repo!.FullName, "recipes", "hh-rlhf.json");
        var dpo = RlhfProcess.Run("dpo", "--recipe", recipe, "--out", run, "--set", "max_records=16", "--set", "dpo.epochs=1",
            "--set", "dpo.max_length=128", "--set", "dpo.max_prompt_length=64", "--set", "dpo_data=data/hh-rlhf-helpful-base-sample/test-first200.jsonl.gz");
        Assert.True(dpo.ExitCode == 0, dpo.Stderr + dpo.Stdout);
        Assert.Contains("eval_accuracy", dpo.Stdout);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(run, "dpo", "metrics.jsonl")).Length); // 15 training pairs, batch 8
        Assert.True(File.Exists(Path.Combine(run, "dpo", "checkpoint", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(run, "dpo", "loss.png")));
    }
}
