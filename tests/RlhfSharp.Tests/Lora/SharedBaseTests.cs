using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Lora;

/// <summary>
/// <c>ppo.shared_base</c>: the actor, reference, critic and reward model of a LoRA PPO run on one copy of the base
/// weights. The base is frozen in every role, so a step must give exactly what the same roles give on separate copies.
/// </summary>
public sealed class SharedBaseTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-shared-base-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    string PolicyDir => Path.Combine(tmp, "policy");
    string RmDir => Path.Combine(tmp, "rm");

    /// <summary>stories260K as an HF folder, and a LoRA reward adapter on it that learned something (B ≠ 0, a centring).</summary>
    void WriteModels()
    {
        using (var stories = PretrainedModel.Load("stories260k"))
            HuggingFaceCheckpoint.Save(stories.Model, PolicyDir, writeExtras: stories.WriteTokenizerFiles);
        manual_seed(7);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(PolicyDir, allowNewHead: true);
        LoraModel.Attach(rm, new LoraConfig { TargetModules = ["all-linear"] });
        using (no_grad())
        {
            foreach (var (_, adapter) in LoraModel.Adapters(rm))
                foreach (var slice in adapter.Slices) slice.Pair.lora_B.normal_(0, 0.05);
            rm.score.weight!.normal_(0, 0.5);
        }
        rm.RewardMean = 0.25;
        PeftAdapter.Save(rm, RmDir, PolicyDir);
    }

    /// <summary>
    /// The reward model or critic on its OWN copy of the base, built without <see cref="SharedBase"/>: a second load of the
    /// policy's folder copied into a new score model, then the adapter folder attached.
    /// </summary>
    ScoreModel OnOwnCopy(bool frozen)
    {
        using var copy = HuggingFaceCheckpoint.LoadCausalLM(PolicyDir);
        var sm = new ScoreModel(copy.Config with { NumLabels = 1 });
        var source = copy.model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
            foreach (var (name, p) in sm.model.named_parameters()) p.copy_(source[name]);
        PeftAdapter.Attach(sm, RmDir);
        sm.RewardMean = JsonNode.Parse(File.ReadAllText(Path.Combine(RmDir, PeftAdapter.RewardFile)))!["reward_mean"]!.GetValue<double>();
        if (frozen)
        {
            foreach (var p in sm.parameters()) p.requires_grad = false;
            sm.eval();
        }
        return sm;
    }

    sealed record Outcome(List<Dictionary<string, double>> Rows, Dictionary<string, float[]> Actor, Dictionary<string, float[]> Critic,
        long Bytes, long BaseBytes, long RoleBytes);

    static Dictionary<string, float[]> Values(IEnumerable<KeyValuePair<string, Tensor>> tensors) =>
        tensors.ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(ScalarType.Float32).contiguous().data<float>().ToArray());

    /// <summary>Two PPO steps of a LoRA actor against the reward adapter, with the critic a trainable copy of it.</summary>
    Outcome TwoPpoSteps(bool shared)
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(PolicyDir);
        LoraModel.Attach(policy, new LoraConfig());
        // Both runs must start from the same A factors: redrawn from their own generator (PEFT's U(±1/√in)), since torch's
        // global one, which Attach draws from, is shared with the tests that run in parallel.
        using (var generator = new Generator(11)) using (no_grad())
            foreach (var (_, adapter) in LoraModel.Adapters(policy))
                foreach (var slice in adapter.Slices)
                {
                    double bound = 1 / Math.Sqrt(slice.Pair.lora_A.shape[1]);
                    slice.Pair.lora_A.uniform_(-bound, bound, generator);
                }
        using var reference = policy.WithoutAdapters();
        using var rm = shared ? SharedBase.RewardModel(policy, PolicyDir, RmDir) : OnOwnCopy(frozen: true);
        using var critic = shared ? SharedBase.Critic(policy, PolicyDir, RmDir) : OnOwnCopy(frozen: false);
        var config = new PpoConfig
        {
            Steps = 2, RolloutBatchSize = 4, MiniBatchSize = 2, PpoEpochs = 1, MaxNewTokens = 8, PtxCoef = 0, Seed = 5,
            Critic = CriticKind.SeparateFromRewardModel, Lora = new LoraConfig(), SharedBase = shared,
            ActorOptimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
            CriticOptimizer = new OptimizerConfig { LearningRate = 1e-2, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
        };
        Tensor Score(SampleBatch b) => rm.Rewards(b.Sequences, b.AttentionMask);
        var log = new MetricsLog(null);
        var baseBefore = Values(policy.model.named_parameters().Where(p => !p.parameter.requires_grad).Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)));
        new PpoTrainer(policy, reference, critic, Score, new Sampler(policy) { EosIds = [2], PadId = 0 }, 0, config) { Metrics = log }
            .Train(Enumerable.Range(0, 8).Select(i => (int[])[1, 403 + i % 4, 261]).ToArray(), []);
        var baseAfter = Values(policy.model.named_parameters().Where(p => !p.parameter.requires_grad).Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)));
        foreach (var (name, v) in baseBefore) Assert.True(v.SequenceEqual(baseAfter[name]), $"{name}: the frozen base changed");

        var rows = log.Rows.Select(r => r.Where(kv => !kv.Key.StartsWith("time_") && kv.Key != "tokens_per_s").ToDictionary()).ToList();
        long roleBytes = PeftAdapter.StateDict(rm).Concat(PeftAdapter.StateDict(critic)).Sum(kv => kv.Value.numel() * kv.Value.element_size());
        return new Outcome(rows, Values(PeftAdapter.StateDict(policy)), Values(PeftAdapter.StateDict(critic)),
            SharedBase.StorageBytes(policy, reference, rm, critic), SharedBase.StorageBytes(policy), roleBytes);
    }

    [Fact]
    public void A_ppo_run_on_one_shared_base_equals_the_run_on_separate_copies_and_holds_the_base_once()
    {
        WriteModels();
        var separate = TwoPpoSteps(shared: false);
        var shared = TwoPpoSteps(shared: true);

        Assert.Equal(2, shared.Rows.Count);
        for (int i = 0; i < 2; i++)
            foreach (var (k, v) in separate.Rows[i])
                Assert.True(v.Equals(shared.Rows[i][k]), $"step {i} {k}: separate {v}, shared {shared.Rows[i][k]}");
        Assert.True(shared.Rows[0]["value_loss"] > 0 && shared.Rows[0]["reward_std"] > 0, "the critic and the reward model took part");
        foreach (var (k, v) in separate.Actor) Assert.True(v.SequenceEqual(shared.Actor[k]), $"actor {k} differs");
        foreach (var (k, v) in separate.Critic) Assert.True(v.SequenceEqual(shared.Critic[k]), $"critic {k} differs");
        // The updates moved the adapters (so equal weights are not two untouched starts).
        var start = Values(PeftAdapter.StateDict(LoadAttached()));
        Assert.Contains(shared.Critic, kv => !kv.Value.SequenceEqual(start[kv.Key]));
        Assert.Contains(shared.Actor, kv => kv.Key.EndsWith("lora_B.weight") && kv.Value.Any(x => x != 0));

        // Memory: the shared run holds the policy (base + actor adapter) plus only the two roles' adapters and heads; the
        // separate one holds two more copies of the base body.
        Assert.Equal(shared.BaseBytes + shared.RoleBytes, shared.Bytes);
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(PolicyDir);
        long body = policy.model.parameters().Sum(p => p.numel() * p.element_size());
        Assert.Equal(2 * body, separate.Bytes - shared.Bytes);
    }

    ScoreModel LoadAttached()
    {
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(PolicyDir);
        return SharedBase.Critic(policy, PolicyDir, RmDir);
    }

    [Fact]
    public void A_role_on_the_shared_base_reads_the_policys_storage_and_scores_as_the_merged_reward_model()
    {
        WriteModels();
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(PolicyDir);
        LoraModel.Attach(policy, new LoraConfig());
        using var rm = SharedBase.RewardModel(policy, PolicyDir, RmDir);
        Assert.All(rm.parameters(), p => Assert.False(p.requires_grad));
        using var critic = SharedBase.Critic(policy, PolicyDir, RmDir);
        Assert.True(critic.score.weight!.requires_grad);
        // Its body trains only the adapter (a copy of the reward model's); the base tensors stay frozen.
        Assert.Equal(LoraModel.Adapters(critic).Sum(a => a.Adapter.parameters().Count()), critic.model.parameters().Count(p => p.requires_grad));

        var ids = tensor(new long[,] { { 1, 403, 407, 261, 378, 2 }, { 0, 0, 1, 300, 301, 2 } });
        var mask = tensor(new long[,] { { 1, 1, 1, 1, 1, 1 }, { 0, 0, 1, 1, 1, 1 } });
        using var merged = HuggingFaceCheckpoint.LoadScoreModel(RmDir); // PEFT's merge_and_unload: its own weights
        using var _ = no_grad();
        var want = merged.Rewards(ids, mask);
        Assert.Equal(0.25, merged.RewardMean!.Value);
        Assert.True(want.abs().max().item<float>() > 0.01f);
        Assert.True(rm.Rewards(ids, mask).allclose(want, rtol: 1e-4, atol: 1e-5), "the adapter on the shared base scores as the merged reward model");

        // One storage: a write into the policy's base is seen by both roles' bodies.
        var name = "layers.0.mlp.down_proj.weight";
        var p = policy.model.named_parameters().Single(x => x.name == name).parameter;
        p.add_(1.0f);
        Assert.Equal(p.data<float>()[0], rm.model.named_parameters().Single(x => x.name == name).parameter.data<float>()[0]);
        Assert.Equal(p.data<float>()[0], critic.model.named_parameters().Single(x => x.name == name).parameter.data<float>()[0]);
    }

    [Fact]
    public void Shared_base_without_lora_or_with_a_reward_model_on_another_base_is_a_clear_error()
    {
        var e = Assert.Throws<RlhfException>(() => new PpoConfig { SharedBase = true }.Validate("ppo"));
        Assert.Contains("ppo.shared_base needs ppo.lora", e.Message);

        WriteModels();
        string full = Path.Combine(tmp, "full-rm");
        using (var merged = HuggingFaceCheckpoint.LoadScoreModel(RmDir)) HuggingFaceCheckpoint.Save(merged, full);
        using var policy = HuggingFaceCheckpoint.LoadCausalLM(PolicyDir);
        Assert.False(SharedBase.Fits(PolicyDir, full));
        Assert.True(SharedBase.Fits(PolicyDir + "/", RmDir));
        e = Assert.Throws<RlhfException>(() => SharedBase.Critic(policy, PolicyDir, full));
        Assert.Contains("ppo.shared_base", e.Message);
        Assert.Contains(full, e.Message);

        string path = Path.Combine(tmp, "r.json");
        File.WriteAllText(path, """{"ppo": {"shared_base": true, "lora": {}}}""");
        Assert.True(Recipe.Load<PipelineConfig>(path).Ppo.SharedBase);
    }

    [Fact]
    public void The_ppo_stage_with_shared_base_trains_its_adapter_against_the_reward_adapter()
    {
        WriteModels();
        using var stories = PretrainedModel.Load("stories260k");
        var stages = new RunStages(stories, Path.Combine(tmp, "run"));
        var config = new PpoConfig
        {
            Steps = 1, RolloutBatchSize = 4, MiniBatchSize = 4, MaxNewTokens = 8, PtxCoef = 0, SaveEvery = 0,
            Lora = new LoraConfig(), SharedBase = true,
        };
        config.Validate("ppo");
        var prompts = Enumerable.Range(0, 4).Select(i => new[] { 1, 403 + i, 261 }).ToList();
        var result = stages.Ppo(config, PolicyDir, RmDir, prompts, [], null, CancellationToken.None);
        Assert.True(double.IsFinite(result["reward_mean"]) && double.IsFinite(result["kl"]));
        Assert.True(PeftAdapter.IsAdapterFolder(stages.Checkpoint("ppo")));
        var rows = MetricsLog.Read(Path.Combine(tmp, "run", "ppo", "metrics.jsonl")).ToList();
        Assert.True(rows[0]["value_loss"] > 0);
    }
}
