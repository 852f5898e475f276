using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace RlhfSharp.Tests.Resilience;

/// <summary>
/// Issue #7 item 4: well over 100 malformed inputs (<see cref="BadInputCases"/>) given to the real CLI. Each must end
/// with exit code 1 and an <c>error:</c> line naming the problem (file and line, key, or value), never a stack trace or
/// an unexpected exception (exit 2); a command that fails must leave an existing run folder byte for byte as it was and
/// must not create its --out folder. Short version: every fourth case; <c>RLHF_SLOW=1</c>: all of them.
/// </summary>
[Trait("Speed", "Slow")]
public sealed class BadInputFuzzTests(ITestOutputHelper output) : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-fuzz-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Fact]
    public void Every_malformed_input_ends_with_a_clear_error_naming_it_and_leaves_the_run_folder_untouched()
    {
        // An existing run (SFT and RM finished) that the failing commands point at, a valid HF model to break, and a stopped SFT run.
        string run = Path.Combine(tmp, "run"), model = Path.Combine(tmp, "model"), stopped = Path.Combine(tmp, "stopped", "run");
        string demos = Path.Combine(tmp, "demos.jsonl"), prefs = Path.Combine(tmp, "prefs.jsonl");
        File.WriteAllLines(demos, Enumerable.Range(0, 8).Select(i => new JsonObject { ["prompt"] = $"Tell story {i}.", ["completion"] = " Once upon a time." }.ToJsonString()));
        File.WriteAllLines(prefs, Enumerable.Range(0, 8).Select(i => new JsonObject { ["prompt"] = $"Tell story {i}.", ["chosen"] = " Once upon a time.", ["rejected"] = " No." }.ToJsonString()));
        string recipe = Path.Combine(tmp, "stopped", "stopped-recipe.json");
        Directory.CreateDirectory(Path.GetDirectoryName(recipe)!);
        File.WriteAllText(recipe, new JsonObject
        {
            ["name"] = "fuzz", ["model"] = "stories260k", ["sft_data"] = demos, ["rm_data"] = prefs,
            ["sft"] = new JsonObject { ["epochs"] = 1, ["batch_size"] = 2, ["max_length"] = 64, ["save_every"] = 1 },
            ["rm"] = new JsonObject { ["epochs"] = 1, ["prompts_per_batch"] = 4, ["max_length"] = 64 },
        }.ToJsonString());
        foreach (var setup in new[] { new[] { "sft", "--recipe", recipe, "--out", run }, ["rm", "--recipe", recipe, "--out", run], ["convert", "--model", "stories260k", "--out", model] })
        {
            var r = FaultRun.Run(setup);
            Assert.True(r.ExitCode == 0, r.Stderr);
        }
        var stop = FaultRun.Run(["sft", "--recipe", recipe, "--out", stopped], () => new RlhfSharp.Training.StageState(Path.Combine(stopped, "sft")).SavedStep >= 1);
        Assert.True(stop.Killed, stop.Stderr);

        Directory.CreateDirectory(Path.Combine(tmp, "cases"));
        var cases = new BadInputCases(Path.Combine(tmp, "cases"), run, model, stopped).Build();
        Assert.True(cases.Count >= 100, $"{cases.Count} cases");
        Assert.Equal(cases.Count, cases.Select(c => c.Name).Distinct().Count());
        var before = Hashes(run);
        var modelBefore = Hashes(model);
        // Every class of issue #16 runs in the short version too; of the rest, every fourth case.
        var chosen = Slow.Enabled ? cases : cases.Where((c, i) => i % 4 == 0 || c.Always).ToList();

        var failures = new ConcurrentBag<string>();
        Parallel.ForEach(chosen, new ParallelOptions { MaxDegreeOfParallelism = 2 }, c =>
        {
            var r = FaultRun.Run(c.Args);
            string first = r.Stderr.Split('\n').FirstOrDefault(l => l.StartsWith("error:") || l.Contains("rror")) ?? r.Stderr.Trim();
            var problems = new List<string>();
            if (r.ExitCode != 1) problems.Add($"exit {r.ExitCode}");
            if (r.Stderr.Contains("   at ") || r.Stderr.Contains("Unhandled exception")) problems.Add("stack trace");
            foreach (var m in c.Mentions.Where(m => !r.Stderr.Contains(m, StringComparison.OrdinalIgnoreCase))) problems.Add($"does not name '{m}'");
            foreach (var f in c.Forbidden.Where(f => r.Stderr.Contains(f, StringComparison.OrdinalIgnoreCase))) problems.Add($"shows '{f}'");
            if (c.FreshOut is not null && Directory.Exists(c.FreshOut)) problems.Add($"created {c.FreshOut}");
            if (problems.Count > 0) failures.Add($"{c.Name}: {string.Join(", ", problems)} | {Trim(first)}");
            output.WriteLine($"{c.Name} -> {r.ExitCode}: {Trim(first)}");
        });
        Assert.True(failures.IsEmpty, $"{failures.Count} of {chosen.Count} cases failed:\n" + string.Join("\n", failures.OrderBy(f => f)));
        Assert.Equal(before, Hashes(run));
        // Issue #16: `pipeline --out MODEL --resume` overwrote the model folder's config.json, which then no longer loaded.
        Assert.Equal(modelBefore, Hashes(model));
    }

    static string Trim(string s) => s.Length > 300 ? s[..300] + "…" : s.Trim();

    static Dictionary<string, string> Hashes(string dir) => Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
        .ToDictionary(f => Path.GetRelativePath(dir, f), FaultRun.Sha256);
}
