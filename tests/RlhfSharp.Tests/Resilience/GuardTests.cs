using System.Diagnostics;
using System.Text.Json.Nodes;
using RlhfSharp.Training;

namespace RlhfSharp.Tests.Resilience;

/// <summary>
/// Issue #7 item 3: a diverging run skips and logs its non-finite steps, then stops with a clear message; a full disk or
/// a read-only run folder ends with a clear error, and the last good checkpoint stays whole (and resumes to the very
/// weights of an uninterrupted run).
/// </summary>
public sealed class GuardTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-guard-").FullName;
    readonly List<string> mounts = [];
    public void Dispose()
    {
        foreach (var m in mounts) Sh("umount", m);
        Directory.Delete(tmp, recursive: true);
    }

    string Recipe(string extra = "")
    {
        string demos = Path.Combine(tmp, "demos.jsonl");
        File.WriteAllLines(demos, Enumerable.Range(0, 24).Select(i =>
            new JsonObject { ["prompt"] = $"Tell a story number {i}.", ["completion"] = $" Once upon a time there were {i} cats. They played." }.ToJsonString()));
        string path = Path.Combine(tmp, "recipe.json");
        File.WriteAllText(path, $$"""
            { "name": "guard", "model": "stories260k", "sft_data": "{{demos}}",
              "sft": { "epochs": 1, "batch_size": 4, "max_length": 64, "save_every": 1 {{extra}} } }
            """);
        return path;
    }

    [Fact]
    public void A_diverging_run_skips_and_logs_non_finite_steps_then_stops_after_five_in_a_row()
    {
        // A learning rate of 1e30 blows the weights up after the first update; every later gradient is NaN.
        var r = FaultRun.Run(["sft", "--recipe", Recipe(", \"optimizer\": { \"learning_rate\": 1e30 }"), "--out", Path.Combine(tmp, "run")]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: the loss or gradient was NaN or infinite for 5 steps in a row (step 6)", r.Stderr);
        Assert.Contains("warning: sft step 2: the loss or gradient was NaN or infinite; the update was", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        var skipped = File.ReadAllLines(Path.Combine(tmp, "run", "sft", "metrics.jsonl")).Select(l => JsonNode.Parse(l)!["skipped_steps"]!.GetValue<double>());
        Assert.Equal(new double[] { 0, 1, 2, 3, 4 }, skipped);
    }

    [SkippableFact]
    public void A_full_disk_stops_with_a_clear_error_and_the_last_good_checkpoint_resumes_to_the_uninterrupted_weights()
    {
        // A small disk is a 5 MB tmpfs; the read-only test covers the message path for other users.
        Prerequisite.Root("mounting a tmpfs needs root (CAP_SYS_ADMIN)");
        string recipe = Recipe();
        var whole = FaultRun.Run(["sft", "--recipe", recipe, "--out", Path.Combine(tmp, "whole")]);
        Assert.True(whole.ExitCode == 0, whole.Stderr);

        // A checkpoint of stories260K (weights + AdamW moments) is ~3.2 MB: a 5 MB disk holds the first, not the second.
        string small = Path.Combine(tmp, "small");
        Assert.True(Mount(small, "size=5m"), "mount -t tmpfs failed");
        var full = FaultRun.Run(["sft", "--recipe", recipe, "--out", small]);
        Assert.Equal(1, full.ExitCode);
        Assert.Contains("No space left on device", full.Stderr);
        Assert.Contains("the last good checkpoint (step 1", full.Stderr);
        Assert.DoesNotContain("   at ", full.Stderr);
        var state = new StageState(Path.Combine(small, "sft"));
        Assert.Equal([1], state.SavedSteps);
        Assert.Empty(Directory.GetDirectories(state.StateDir, ".*")); // the torn write was cleaned up

        // Moved to a disk with room, the run resumes from that checkpoint to the uninterrupted run's exact weights.
        string moved = Path.Combine(tmp, "moved");
        Sh("cp", "-a", small, moved);
        var resumed = FaultRun.Run(["sft", "--recipe", recipe, "--out", moved, "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Equal(FaultRun.Sha256(Path.Combine(tmp, "whole", "sft", "checkpoint", "model.safetensors")),
            FaultRun.Sha256(Path.Combine(moved, "sft", "checkpoint", "model.safetensors")));
    }

    [Fact]
    public void A_read_only_run_folder_is_refused_with_its_name_and_left_untouched()
    {
        string run = Path.Combine(tmp, "ro");
        // A stopped run: cancelled after 2 steps is what Ctrl-C leaves; a kill after a step's checkpoint leaves the same.
        var stopped = FaultRun.Run(["sft", "--recipe", Recipe(), "--out", run], () => new StageState(Path.Combine(run, "sft")).SavedStep >= 2);
        Assert.True(stopped.Killed, stopped.Stderr);
        var before = Hashes(run);
        Assert.True(MakeReadOnly(run), "neither a read-only bind mount (root) nor chmod (non-root) worked");
        var r = FaultRun.Run(["sft", "--recipe", Path.Combine(tmp, "recipe.json"), "--out", run, "--resume"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"{Path.Combine(run, "sft")}: cannot write the run here", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.Equal(before, Hashes(run));
    }

    static bool IsRoot => Prerequisite.IsRoot;

    static Dictionary<string, string> Hashes(string dir) => Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
        .ToDictionary(f => Path.GetRelativePath(dir, f), FaultRun.Sha256);

    bool Mount(string dir, string options)
    {
        Directory.CreateDirectory(dir);
        if (Sh("mount", "-t", "tmpfs", "-o", options, "tmpfs", dir) != 0) return false;
        mounts.Insert(0, dir);
        return true;
    }

    bool MakeReadOnly(string dir)
    {
        if (!IsRoot)
        {
            foreach (var d in Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories).Append(dir))
                File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            return true;
        }
        if (Sh("mount", "--bind", dir, dir) != 0) return false;
        mounts.Insert(0, dir);
        return Sh("mount", "-o", "remount,ro,bind", dir) == 0;
    }

    static int Sh(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode;
    }
}
