using System.Diagnostics;
using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Tests.Resilience;
using RlhfSharp.Training;
using Xunit.Abstractions;

namespace RlhfSharp.Tests.Distributed;

/// <summary>
/// SFT on stories260K (6 optimizer steps, global batch 8 split 4 + 4, weight decay on so both AdamW groups step) run
/// under <c>mpirun</c>: one rank with plain AdamW, and two ranks with ZeRO-1 (<c>optimizer.zero_stage: 1</c>) and with the
/// all-reduce path, with and without clipping; then a two-rank ZeRO-1 run killed inside a checkpoint write and resumed.
/// </summary>
public sealed class ZeroRuns : IDisposable
{
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "rlhf-zero-" + Guid.NewGuid().ToString("N")[..8]);
    public Dictionary<string, MpiRun.Result> Results { get; } = [];
    /// <summary>The killed run: whether the kill landed, the optimizer file's first bytes in the checkpoint it left.</summary>
    public (bool Killed, int SavedStep, string OptimizerHead, MpiRun.Result Resumed, MpiRun.Result ResumedAlone)? Resume { get; }
    public const int Steps = 6;

    public ZeroRuns()
    {
        Directory.CreateDirectory(Dir);
        if (Prerequisite.MpirunPath is null) return;
        string data = WriteDemonstrations();
        foreach (var (name, ranks, zero, clip) in new[] { ("one", 1, 0, 1.0), ("zero", 2, 1, 1.0), ("allreduce-noclip", 2, 0, 0.0), ("zero-noclip", 2, 1, 0.0) })
            Results[name] = MpiRun.Run(ranks, null, "sft", "--recipe", Recipe(name, data, zero, clip), "--out", Run(name));

        // Killed while rank 0 holds a checkpoint write open (after step 3's tensors, before it is published), so step 2's or
        // 3's checkpoint is the newest whole one; then resumed on two ranks without the hook.
        string recipe = Recipe("killed", data, 1, 1.0);
        string stageDir = Path.Combine(Run("killed"), "sft");
        bool killed = KillWhen(() => FaultRun.WritingCheckpointAbove(stageDir, 2), recipe);
        var state = new StageState(stageDir);
        int saved = state.SavedStep ?? 0;
        string head = "";
        if (saved > 0)
        {
            var bytes = File.ReadAllBytes(Path.Combine(state.StateDir, $"step-{saved:D8}", "policy.optimizer.bin"));
            head = System.Text.Encoding.UTF8.GetString(bytes, 13, Math.Min(bytes.Length - 13, 19)); // after 3 ints and the string's length byte
        }
        // The same state resumed on two ranks, and tried in one process (no mpirun), which refuses it.
        foreach (var file in Directory.EnumerateFiles(Run("killed"), "*", SearchOption.AllDirectories))
        {
            string copy = Path.Combine(Run("killed-alone"), Path.GetRelativePath(Run("killed"), file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }
        var resumed = MpiRun.Run(2, null, "sft", "--recipe", recipe, "--out", Run("killed"), "--resume");
        var alone = FaultRun.Run(["sft", "--recipe", recipe, "--out", Run("killed-alone"), "--resume"]);
        Resume = (killed, saved, head, resumed, new MpiRun.Result(alone.ExitCode, "", alone.Stderr));
    }

    public string Run(string name) => Path.Combine(Dir, name);

    string Recipe(string name, string data, int zeroStage, double maxGradNorm)
    {
        string path = Path.Combine(Dir, name + ".json");
        File.WriteAllText(path, new JsonObject
        {
            ["name"] = "zero", ["model"] = "stories260k", ["sft_data"] = data,
            ["sft"] = new JsonObject
            {
                ["epochs"] = 2, ["batch_size"] = 8, ["max_length"] = 64, ["save_every"] = 1,
                ["optimizer"] = new JsonObject
                {
                    ["learning_rate"] = 1e-4, ["warmup_ratio"] = 0, ["weight_decay"] = 0.1, ["max_grad_norm"] = maxGradNorm, ["zero_stage"] = zeroStage,
                },
            },
        }.ToJsonString());
        return path;
    }

    /// <summary>Runs two ranks with the checkpoint-write hook and kills the whole process tree when <paramref name="when"/> holds.</summary>
    bool KillWhen(Func<bool> when, string recipe)
    {
        var psi = new ProcessStartInfo(Prerequisite.MpirunPath!) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { "-np", "2", "--oversubscribe", "--allow-run-as-root", "dotnet", Path.Combine(AppContext.BaseDirectory, "rlhf.dll"), "sft", "--recipe", recipe, "--out", Run("killed") })
            psi.ArgumentList.Add(a);
        psi.Environment["RLHF_FAULT_CHECKPOINT_SLEEP_MS"] = "1000"; // local ranks inherit mpirun's environment
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        bool killed = false;
        while (!p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(5))
        {
            if (when()) { p.Kill(entireProcessTree: true); killed = true; break; }
            Thread.Sleep(5);
        }
        if (!p.WaitForExit(60_000)) p.Kill(entireProcessTree: true);
        return killed;
    }

    string WriteDemonstrations()
    {
        var rng = new Random(5);
        string[] words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "park", "with", "red", "ball", "happy", "kind"];
        string Words(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => words[rng.Next(words.Length)]));
        string path = Path.Combine(Dir, "sft.jsonl");
        // 26 examples: 24 train (3 steps of 8 per epoch), the rest held out.
        File.WriteAllLines(path, Enumerable.Range(0, 26).Select(_ =>
            System.Text.Json.JsonSerializer.Serialize(new { prompt = "Once upon a time " + Words(4), completion = " " + Words(rng.Next(5, 15)) })));
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

public sealed class ZeroRedundancyTests(ZeroRuns runs, ITestOutputHelper output) : IClassFixture<ZeroRuns>
{
    Dictionary<string, TorchSharp.torch.Tensor> Weights(string run)
    {
        var r = runs.Results.GetValueOrDefault(run);
        if (r is not null) Assert.True(r.ExitCode == 0, $"{run}: {r.Stderr}{r.Stdout}");
        return SafeTensors.Load(Path.Combine(runs.Run(run), "sft", "checkpoint", "model.safetensors"));
    }

    List<Dictionary<string, double>> Rows(string run) => MetricsLog.Read(Path.Combine(runs.Run(run), "sft", "metrics.jsonl")).ToList();

    static double MaxDiff(Dictionary<string, TorchSharp.torch.Tensor> a, Dictionary<string, TorchSharp.torch.Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        return a.Keys.Max(k => (a[k] - b[k]).abs().max().item<float>());
    }

    [SkippableFact]
    public void Zero1_on_two_ranks_trains_to_the_all_reduce_runs_weights_bit_for_bit_without_clipping()
    {
        Prerequisite.Mpirun();
        var (zero, allReduce) = (Weights("zero-noclip"), Weights("allreduce-noclip"));
        double diff = MaxDiff(zero, allReduce);
        output.WriteLine($"max |w(zero-1) − w(all-reduce)| = {diff:E2}");
        // Two ranks sum a + b in either path (exact and commutative), and AdamW steps each element alike: the same bits.
        Assert.Equal(0.0, diff);
        // … and the sharded path did run: rank 0 held the moments of half of the parameters, ⌈n/2⌉ elements, 8 bytes each.
        long n = zero.Values.Sum(t => t.numel());
        double expected = (n + 1) / 2 * 8 / 1048576.0;
        var rows = Rows("zero-noclip");
        Assert.Equal(ZeroRuns.Steps, rows.Count);
        Assert.All(rows, r => Assert.Equal(expected, r["optimizer_state_mb_policy"], 9));
        Assert.DoesNotContain(Rows("allreduce-noclip"), r => r.ContainsKey("optimizer_state_mb_policy"));
    }

    [SkippableFact]
    public void Zero1_on_two_ranks_trains_to_the_weights_and_logs_the_metrics_of_one_process()
    {
        Prerequisite.Mpirun();
        var (one, zero) = (Weights("one"), Weights("zero"));
        double diff = MaxDiff(one, zero);
        var oneRows = Rows("one");
        var zeroRows = Rows("zero");
        Assert.Equal(ZeroRuns.Steps, oneRows.Count);
        Assert.Equal(oneRows.Count, zeroRows.Count);
        // The DataParallelTests bound: an element whose gradient is rounding noise can step by up to lr (1e-4) when the
        // ranks sum in another order, so less than one step per element; a lost reduce-scatter or all-gather, a slice
        // written to the wrong place, or a missed clip moves weights by O(lr) on every element.
        output.WriteLine($"max |w(one process) − w(zero-1, 2 ranks)| = {diff:E2}");
        Assert.True(diff < 1e-4, $"weights differ by {diff:E2}, more than one AdamW step (lr 1e-4)");
        int clipped = 0;
        for (int i = 0; i < oneRows.Count; i++)
        {
            foreach (var k in new[] { "loss", "grad_norm" })
            {
                double x = oneRows[i][k], y = zeroRows[i][k];
                Assert.True(Math.Abs(x - y) <= 1e-5 + 1e-4 * Math.Abs(x), $"step {i + 1} {k}: one process {x}, zero-1 {y}");
            }
            if (oneRows[i]["grad_norm"] > 1.0) clipped++;
        }
        output.WriteLine($"{clipped} of {oneRows.Count} steps clipped (grad_norm > 1)");
        Assert.True(clipped > 0, "no step was clipped: the test would not see the global norm");
    }

    [SkippableFact]
    public void Zero1_killed_inside_a_checkpoint_write_resumes_to_the_uninterrupted_weights()
    {
        Prerequisite.Mpirun();
        var (killed, saved, head, resumed, _) = runs.Resume!.Value;
        Assert.True(killed, "the run ended before the kill");
        Assert.True(saved is >= 2 and < ZeroRuns.Steps, $"newest whole checkpoint at step {saved}");
        // The checkpoint holds the moments gathered whole from both ranks (the sharded layout, not TorchSharp's AdamW).
        Assert.Equal("ZeroRedundancyAdamW", head);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr + resumed.Stdout);
        output.WriteLine($"killed after step {saved}'s checkpoint, resumed on two ranks");
        string Sha(string run) => FaultRun.Sha256(Path.Combine(runs.Run(run), "sft", "checkpoint", "model.safetensors"));
        Assert.Equal(Sha("zero"), Sha("killed"));
        Assert.Equal(Rows("zero").Select(r => (r["loss"], r["grad_norm"])), Rows("killed").Select(r => (r["loss"], r["grad_norm"])));
    }

    [SkippableFact]
    public void A_sharded_checkpoint_in_one_process_is_refused_naming_zero_stage()
    {
        Prerequisite.Mpirun();
        var (killed, saved, _, _, alone) = runs.Resume!.Value;
        Assert.True(killed && saved >= 2, $"the kill landed: {killed}, newest whole checkpoint at step {saved}");
        // Plain AdamW (Training/AdamW) cannot take the gathered moments yet: the resume stops with the key to change.
        Assert.NotEqual(0, alone.ExitCode);
        Assert.Contains("saved sharded (optimizer.zero_stage 1 under mpirun)", alone.Stderr);
        Assert.DoesNotContain("   at ", alone.Stderr);
    }
}
