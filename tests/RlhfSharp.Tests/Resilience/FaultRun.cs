using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Tests.Resilience;

/// <summary>
/// Starts the real <c>rlhf</c> program for the fault tests and kills it (SIGKILL) when a trigger fires. Every run
/// gets <c>OMP_NUM_THREADS=1</c>: the same thread count on both sides is one of the determinism settings
/// (docs/resume.md), and one thread is also much faster than two on a crowded 2-core machine.
/// </summary>
internal static class FaultRun
{
    public sealed record Outcome(bool Killed, int ExitCode, string Stderr);

    /// <summary>Runs rlhf; when <paramref name="killWhen"/> turns true (polled every 2 ms) it is SIGKILLed after <paramref name="extraDelayMs"/>.</summary>
    public static Outcome Run(string[] args, Func<bool>? killWhen = null, int extraDelayMs = 0, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlhf.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        bool killed = false;
        while (!p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(5))
        {
            if (killWhen is not null && killWhen())
            {
                if (extraDelayMs > 0) Thread.Sleep(extraDelayMs);
                if (!p.HasExited) { p.Kill(); killed = true; } // Process.Kill is SIGKILL on Unix: no handler runs
                break;
            }
            Thread.Sleep(2);
        }
        if (!p.WaitForExit(300_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException("rlhf " + string.Join(' ', args)); }
        return new Outcome(killed, p.ExitCode, stderr.Result);
    }

    public static string Sha256(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));

    /// <summary>Rows in a stage's metrics.jsonl (0 when it does not exist yet).</summary>
    public static int MetricRows(string stageDir)
    {
        string path = Path.Combine(stageDir, "metrics.jsonl");
        try { return File.Exists(path) ? File.ReadAllLines(path).Count(l => l.EndsWith('}')) : 0; }
        catch (IOException) { return 0; }
    }

    /// <summary>A checkpoint write in flight: a temporary step folder in the stage's state folder whose step is above <paramref name="minStep"/>.</summary>
    public static bool WritingCheckpointAbove(string stageDir, int minStep)
    {
        string state = Path.Combine(stageDir, "state");
        if (!Directory.Exists(state)) return false;
        try
        {
            return Directory.EnumerateDirectories(state, ".step-*.tmp-*")
                .Any(d => int.Parse(Path.GetFileName(d)[".step-".Length..].Split('.')[0]) > minStep);
        }
        catch (IOException) { return false; }
    }

    /// <summary>
    /// The checks that a run folder is whole after it finished: no temporary or moved-aside folder or file anywhere,
    /// done.json parses, metrics.jsonl has each step 1..N once, in order, every line valid JSON.
    /// </summary>
    public static void AssertWhole(string runDir, string stage, int steps)
    {
        var leftovers = Directory.EnumerateFileSystemEntries(runDir, "*", SearchOption.AllDirectories)
            .Where(p => Path.GetFileName(p).StartsWith('.') || p.Contains(".old-") || p.Contains(".tmp")).ToList();
        Assert.True(leftovers.Count == 0, "leftovers: " + string.Join(", ", leftovers));
        string dir = Path.Combine(runDir, stage);
        Assert.False(Directory.Exists(Path.Combine(dir, "state")), "a finished stage drops its resume state");
        Assert.IsType<JsonObject>(JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "done.json"))));
        var lines = File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"));
        var stepsLogged = lines.Select(l => JsonNode.Parse(l)!["step"]!.GetValue<double>()).ToArray();
        Assert.Equal(Enumerable.Range(1, steps).Select(i => (double)i), stepsLogged);
        Assert.IsType<JsonObject>(JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "recipe.json"))));
        using var _ = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "checkpoint", "config.json")));
    }
}
