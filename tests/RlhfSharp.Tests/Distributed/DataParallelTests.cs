using RlhfSharp.Checkpoints;
using RlhfSharp.Training;
using Xunit.Abstractions;

namespace RlhfSharp.Tests.Distributed;

/// <summary>
/// Trains each data-parallel stage twice on the same global batch: once as one rank (<c>mpirun -np 1</c>), once as two
/// ranks on this machine (<c>mpirun -np 2</c>), in two run folders. (Both under mpirun: Open MPI pins each rank to a core,
/// so neither run fights the other tests for threads and the times compare.)
/// </summary>
public sealed class TwoRankRuns : IDisposable
{
    public static readonly string[] Stages = ["sft", "rm", "dpo", "ppo", "reinforce-pp"];
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "rlhf-mpi-" + Guid.NewGuid().ToString("N")[..8]);
    public string OneProcess => Path.Combine(Dir, "one");
    public string TwoRanks => Path.Combine(Dir, "two");
    /// <summary>Where Open MPI wrote each rank's output of the two-rank SFT run.</summary>
    public string SftRankOutput => Path.Combine(Dir, "sft-ranks");
    public Dictionary<string, (MpiRun.Result One, MpiRun.Result Two)> Results { get; } = [];
    public Dictionary<string, (double One, double Two)> Seconds { get; } = [];

    public string Recipe { get; }

    /// <summary>Without Open MPI nothing runs here, and every test of the class reports itself skipped (<see cref="Prerequisite.Mpirun"/>).</summary>
    public TwoRankRuns()
    {
        Directory.CreateDirectory(Dir);
        string recipe = Recipe = WriteRecipe();
        foreach (var stage in Prerequisite.MpirunPath is null ? [] : Stages)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var one = MpiRun.Run(1, null, stage, "--recipe", recipe, "--out", OneProcess);
            double oneSeconds = clock.Elapsed.TotalSeconds;
            clock.Restart();
            var two = MpiRun.Run(2, stage == "sft" ? SftRankOutput : null, stage, "--recipe", recipe, "--out", TwoRanks);
            Seconds[stage] = (oneSeconds, clock.Elapsed.TotalSeconds);
            Results[stage] = (one, two);
        }
    }

    /// <summary>
    /// Tiny stages of 2–3 optimizer steps on stories260K. Global batches of 8 split 4 + 4. PPO and REINFORCE++ sample
    /// greedily (temperature 0), so both runs see the same rollouts whoever generates them; REINFORCE++ whitens over the
    /// global batch, the path that needs its statistics all-reduced.
    /// </summary>
    string WriteRecipe()
    {
        var rng = new Random(3);
        string[] words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park", "with", "red", "ball", "happy", "kind"];
        string Words(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => words[rng.Next(words.Length)]));
        string sft = Path.Combine(Dir, "sft.jsonl");
        File.WriteAllLines(sft, Enumerable.Range(0, 24).Select(_ =>
            System.Text.Json.JsonSerializer.Serialize(new { prompt = "Once upon a time " + Words(4), completion = " " + Words(rng.Next(5, 15)) })));
        string hh = "data/hh-rlhf-helpful-base-sample/test-first200.jsonl.gz";
        string recipe = Path.Combine(Dir, "recipe.json");
        File.WriteAllText(recipe, $$"""
        {
          "name": "mpi", "model": "stories260k", "sft_data": "{{sft}}", "rm_data": "{{hh}}", "dpo_data": "{{hh}}", "ppo_prompts": "{{hh}}",
          "max_records": 20, "max_prompt_tokens": 32,
          "sft": { "epochs": 1, "batch_size": 8, "max_length": 64, "optimizer": { "learning_rate": 1e-4, "warmup_ratio": 0 } },
          "rm": { "epochs": 1, "prompts_per_batch": 8, "max_length": 96, "optimizer": { "learning_rate": 1e-4, "warmup_ratio": 0 } },
          "dpo": { "epochs": 1, "batch_size": 8, "max_length": 96, "max_prompt_length": 32, "optimizer": { "learning_rate": 1e-4, "warmup_ratio": 0 } },
          "ppo": { "steps": 2, "rollout_batch_size": 8, "mini_batch_size": 4, "ppo_epochs": 2, "max_new_tokens": 12, "temperature": 0,
                   "actor_optimizer": { "learning_rate": 1e-4 }, "critic_optimizer": { "learning_rate": 1e-4 } },
          "grpo": { "steps": 2, "prompts_per_step": 4, "group_size": 2, "mini_batch_size": 2, "max_new_tokens": 12, "temperature": 0,
                    "optimizer": { "learning_rate": 1e-4 } }
        }
        """);
        return recipe;
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

public sealed class DataParallelTests(TwoRankRuns runs, ITestOutputHelper output) : IClassFixture<TwoRankRuns>
{
    public static TheoryData<string> Stages => new(TwoRankRuns.Stages);

    static string Folder(string stage) => stage.Replace('-', '_');

    [SkippableTheory]
    [MemberData(nameof(Stages))]
    public void Two_ranks_train_to_the_weights_of_one_process_with_the_same_global_batch(string stage)
    {
        Prerequisite.Mpirun();
        var (one, two) = runs.Results[stage];
        Assert.True(one.ExitCode == 0, $"one rank: {one.Stderr}{one.Stdout}");
        Assert.True(two.ExitCode == 0, $"two ranks: {two.Stderr}{two.Stdout}");
        var a = SafeTensors.Load(Path.Combine(runs.OneProcess, Folder(stage), "checkpoint", "model.safetensors"));
        var b = SafeTensors.Load(Path.Combine(runs.TwoRanks, Folder(stage), "checkpoint", "model.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        double diff = a.Keys.Max(k => (a[k] - b[k]).abs().max().item<float>());
        // How far training moved the weights, from the stage's starting point (the SFT checkpoint) where it is on disk.
        double moved = double.NaN;
        if (stage is not "sft" and not "rm")
        {
            var start = SafeTensors.Load(Path.Combine(runs.OneProcess, "sft", "checkpoint", "model.safetensors"));
            moved = a.Keys.Max(k => (a[k] - start[k]).abs().max().item<float>());
        }
        var (s1, s2) = runs.Seconds[stage];
        output.WriteLine($"{stage}: max |w1 − w2| = {diff:E2}, training moved weights by up to {moved:E2}; {s1:F1} s one rank, {s2:F1} s two ranks");
        // AdamW divides each element's step by its own gradient scale, so an element whose gradient is rounding noise
        // (|g| near eps) can step by up to the learning rate (1e-4) in either direction when two ranks sum in another
        // order, and the two runs by twice that where the noise's sign differs: measured 7.6e-5 on one element of the
        // dpo run on an Intel machine, 1.2e-5 on AMD, 1.01e-4 on one element of reinforce-pp (8 optimizer steps, each
        // scored by the run's own reward model, itself trained on two ranks) on an AMD machine with oneMKL's Intel
        // kernels, every other element within 1e-5. So the element bound is two steps' worth (2·lr), and the whole
        // update must agree to 1%: a missing all-reduce or a wrong shard weight moves the update by O(1), far past both.
        Assert.True(diff < 2e-4, $"{stage}: weights differ by {diff:E2}, more than two opposite AdamW steps (lr 1e-4)");
        if (stage is not "sft" and not "rm")
        {
            var start = SafeTensors.Load(Path.Combine(runs.OneProcess, "sft", "checkpoint", "model.safetensors"));
            double Squares(Func<string, TorchSharp.torch.Tensor> f) => a.Keys.Sum(k => f(k).square().sum().item<float>());
            double relative = Math.Sqrt(Squares(k => a[k] - b[k]) / Squares(k => a[k] - start[k]));
            output.WriteLine($"{stage}: |update(1) − update(2)| / |update(1)| = {relative:E2}");
            Assert.True(relative < 1e-2, $"{stage}: the two-rank update differs from one rank's by {relative:P2}");
            Assert.True(moved > 1e-5, $"{stage}: training moved the weights by only {moved:E2}");
        }
        else Assert.True(diff < 5e-5, $"{stage}: weights differ by {diff:E2}");
    }

    [SkippableTheory]
    [MemberData(nameof(Stages))]
    public void Two_ranks_log_the_losses_and_gradient_norms_of_one_process(string stage)
    {
        Prerequisite.Mpirun();
        var one = MetricsLog.Read(Path.Combine(runs.OneProcess, Folder(stage), "metrics.jsonl")).ToList();
        var two = MetricsLog.Read(Path.Combine(runs.TwoRanks, Folder(stage), "metrics.jsonl")).ToList();
        // Rank 0 alone writes: as many rows as one rank, not twice as many.
        Assert.True(one.Count >= 2, $"{stage}: {one.Count} steps");
        Assert.Equal(one.Count, two.Count);
        string[] keys = ["loss", "grad_norm", "grad_norm_actor", "grad_norm_critic", "policy_loss", "value_loss", "reward_mean", "kl", "accuracy", "eval_loss"];
        int compared = 0;
        for (int i = 0; i < one.Count; i++)
            foreach (var k in keys.Where(one[i].ContainsKey))
            {
                double x = one[i][k], y = two[i][k];
                // A gradient all-reduce that averaged instead of summed, or skipped, shows here as a grad_norm off by 2× or more.
                Assert.True(Math.Abs(x - y) <= 1e-5 + 1e-4 * Math.Abs(x), $"{stage} step {i + 1} {k}: one rank {x}, two ranks {y}");
                compared++;
            }
        Assert.True(compared >= 2 * one.Count, $"{stage}: only {compared} numbers compared");
    }

    [SkippableFact]
    public void Two_ranks_in_two_network_namespaces_over_a_veth_pair_train_as_one_rank()
    {
        Prerequisite.Mpirun();
        Prerequisite.Ip();
        Prerequisite.Root("network namespaces and veth pairs need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)");
        using var net = new NetworkNamespaces(Path.Combine(runs.Dir, "netns"));
        string run = Path.Combine(runs.Dir, "netns-run");
        long before = net.BytesSentFromA();
        var r = net.MpiRun2($"dotnet {Path.Combine(AppContext.BaseDirectory, "rlhf.dll")} sft --recipe {runs.Recipe} --out {run}");
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        long sent = net.BytesSentFromA() - before;
        var a = SafeTensors.Load(Path.Combine(runs.OneProcess, "sft", "checkpoint", "model.safetensors"));
        var b = SafeTensors.Load(Path.Combine(run, "sft", "checkpoint", "model.safetensors"));
        double diff = a.Keys.Max(k => (a[k] - b[k]).abs().max().item<float>());
        long gradientBytes = a.Values.Sum(t => t.numel()) * sizeof(float);
        output.WriteLine($"sft across namespaces: max |w1 − w2| = {diff:E2}; {sent:N0} bytes sent over the veth pair ({gradientBytes:N0} bytes of gradient per step)");
        Assert.True(diff < 5e-5, $"weights differ by {diff:E2}");
        // Every step's all-reduce crossed the veth pair: at least one gradient's worth per optimizer step.
        int steps = MetricsLog.Read(Path.Combine(run, "sft", "metrics.jsonl")).Count();
        Assert.True(sent >= steps * gradientBytes / 2, $"only {sent} bytes crossed the veth pair for {steps} steps");
    }

    [SkippableFact]
    public void Only_rank_0_prints_and_writes()
    {
        Prerequisite.Mpirun();
        var (_, two) = runs.Results["sft"];
        Assert.Contains("checkpoint:", two.Stdout);
        var rank0 = Directory.GetFiles(runs.SftRankOutput, "stdout", SearchOption.AllDirectories).Single(f => f.Contains("rank.0"));
        var rank1 = Directory.GetFiles(runs.SftRankOutput, "*", SearchOption.AllDirectories).Where(f => f.Contains("rank.1")).ToList();
        Assert.Contains("checkpoint:", File.ReadAllText(rank0));
        Assert.All(rank1, f => Assert.True(new FileInfo(f).Length == 0, $"{f}: {File.ReadAllText(f)}"));
    }
}
