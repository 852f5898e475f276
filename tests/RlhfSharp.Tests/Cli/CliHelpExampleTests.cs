using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace RlhfSharp.Tests.Cli;

/// <summary>
/// Every example in every command's <c>--help</c> is run (issue 15: <c>rlhf ppo --help</c> suggested <c>ppo.epochs</c>,
/// which the recipe refused). Commands are found by walking the help's command lists, so a new command's examples are
/// covered without listing it here.
/// </summary>
public sealed class CliHelpExampleTests
{
    static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx"))) dir = dir.Parent;
        return dir!.FullName;
    }

    /// <summary>Every command path (<c>[]</c>, <c>["label"]</c>, <c>["label", "serve"]</c>, …) with its help text.</summary>
    static List<(string[] Command, string Help)> AllHelp()
    {
        var result = new List<(string[], string)>();
        var queue = new Queue<string[]>([[]]);
        while (queue.Count > 0)
        {
            var command = queue.Dequeue();
            var r = RlhfProcess.Run([.. command, "--help"]);
            Assert.True(r.ExitCode == 0, $"rlhf {string.Join(' ', command)} --help: {r.Stderr}");
            result.Add((command, r.Stdout));
            int commands = r.Stdout.IndexOf("\nCommands:", StringComparison.Ordinal);
            if (commands < 0) continue;
            foreach (Match m in Regex.Matches(r.Stdout[commands..], @"^\s{2}([a-z][a-z0-9-]*)(?=\s)", RegexOptions.Multiline))
                queue.Enqueue([.. command, m.Groups[1].Value]);
        }
        return result;
    }

    static RlhfProcess.Result RunIn(string dir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlhf.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException(string.Join(' ', args)); }
        return new RlhfProcess.Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void Every_example_in_every_help_runs()
    {
        string root = RepoRoot();
        int run = 0;
        var failures = new List<string>();
        foreach (var (command, help) in AllHelp())
        {
            string name = "rlhf " + string.Join(' ', command);
            bool checkable = help.Contains("--check");
            // "--set key=value" and "e.g. FILE.json" (a recipe) are the examples the help gives today; any other
            // "e.g. --option value" is an example this test must learn to run, so it fails rather than skip it.
            foreach (Match m in Regex.Matches(help, @"--set (?<kv>[a-z_.]+=\S+?)(?=[\s),]|$)"))
            {
                if (!checkable) { failures.Add($"{name}: example '--set {m.Groups["kv"].Value}' but no --check to run it"); continue; }
                string kv = m.Groups["kv"].Value;
                var r = RunIn(root, [.. command, "--set", kv, "--check"]);
                run++;
                if (r.ExitCode != 0) { failures.Add($"{name} --set {kv}: {r.Stderr.Trim()}"); continue; }
                // The example must change what it names: the resolved recipe holds the value at the key.
                JsonNode? node = JsonNode.Parse(r.Stdout);
                foreach (var part in kv[..kv.IndexOf('=')].Split('.')) node = node?[part];
                string value = kv[(kv.IndexOf('=') + 1)..];
                if (node?.ToJsonString() != JsonNode.Parse(value)?.ToJsonString()) failures.Add($"{name} --set {kv}: resolved to {node?.ToJsonString()}");
            }
            foreach (Match m in Regex.Matches(help, @"e\.g\. (?<file>[\w./-]+\.json)\b"))
            {
                if (!checkable) { failures.Add($"{name}: example recipe '{m.Groups["file"].Value}' but no --check to run it"); continue; }
                var r = RunIn(root, [.. command, "--recipe", m.Groups["file"].Value, "--check"]);
                run++;
                if (r.ExitCode != 0) failures.Add($"{name} --recipe {m.Groups["file"].Value}: {r.Stderr.Trim()}");
            }
            foreach (Match m in Regex.Matches(help, @"e\.g\. (?<opt>--(?!set\b)[a-z-]+)"))
                failures.Add($"{name}: example '{m.Groups["opt"].Value}' that this test does not know how to run");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        // sft, rm, the 13 method commands and pipeline give a --set example; the 15 stage commands a recipe file.
        Assert.True(run >= 31, $"only {run} examples found: did the help change shape?");
    }
}
