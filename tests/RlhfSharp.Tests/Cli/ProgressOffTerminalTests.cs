using System.Text.Json.Nodes;
using RlhfSharp.Cli;
using RlhfSharp.Pipeline;
using RlhfSharp.Reporting;
using RlhfSharp.Training;

namespace RlhfSharp.Tests.Cli;

/// <summary>Issue 15, progress and reports off a terminal: plain lines without repeats, no -0, every stage to 100%, a table within 80 columns.</summary>
public sealed class ProgressOffTerminalTests
{
    static Dictionary<string, double> M(params (string, double)[] xs) => xs.ToDictionary(x => x.Item1, x => x.Item2);

    [Fact]
    public void Plain_progress_prints_each_stage_in_tenths_to_100_percent_without_repeats_or_minus_zero()
    {
        var output = new StringWriter();
        var progress = new PlainProgress(output, ["loss", "kl"]);
        for (int s = 1; s <= 40; s++) progress.Report(new TrainingProgress("sft", s, 40, M(("loss", 2.0 - s * 0.01))));
        for (int s = 1; s <= 60; s++)
        {
            progress.Report(new TrainingProgress("ppo", s, 60, M(("kl", -0.0001 * s))));
            // A stage reporting again after it finished (as an interleaved eval would) prints nothing new.
            progress.Report(new TrainingProgress("sft", 40, 40, M(("loss", 1.6))));
        }
        // The evaluation reports its last batch at 200/200, which Spectre's off-terminal rendering never showed (it stopped at 80%).
        foreach (var done in new[] { 32, 64, 96, 128, 160, 192, 200 }) progress.Report(new TrainingProgress("eval ppo", done, 200, M()));
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(lines.Length, lines.Distinct().Count());
        Assert.DoesNotContain(lines, l => l.Contains("-0 ") || l.EndsWith("-0"));
        foreach (var stage in new[] { "sft ", "ppo ", "eval ppo " })
        {
            var own = lines.Where(l => l.StartsWith(stage)).ToList();
            Assert.InRange(own.Count, 2, 11);
            Assert.Contains("(100%)", own[^1]);
        }
        Assert.Equal("0", PlainProgress.Number(-0.0001));
        Assert.Equal("-0.001", PlainProgress.Number(-0.0012));
    }

    [Fact]
    public void A_stage_run_into_a_log_file_prints_plain_progress_lines()
    {
        // The command as a user runs it with 2> log: stderr is not a terminal, so no live bars redrawn as blocks of
        // text, no escape codes, every line once, the stage reaching 100%.
        var tmp = Directory.CreateTempSubdirectory("rlhf-plain-").FullName;
        try
        {
            string demos = Path.Combine(tmp, "demos.jsonl"), recipe = Path.Combine(tmp, "recipe.json");
            File.WriteAllLines(demos, Enumerable.Range(0, 60).Select(i =>
                new JsonObject { ["prompt"] = $"Tell a story number {i}.", ["completion"] = $" Once upon a time there were {i} cats." }.ToJsonString()));
            File.WriteAllText(recipe, $$"""
                { "name": "plain", "model": "stories260k", "sft_data": "{{demos}}", "sft": { "epochs": 2, "batch_size": 4, "max_length": 48 } }
                """);
            var r = RlhfProcess.Run("sft", "--recipe", recipe, "--out", Path.Combine(tmp, "run"));
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.DoesNotContain('\u001b', r.Stderr);
            Assert.DoesNotContain('\r', r.Stderr);
            var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var progress = lines.Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^sft \d+/\d+ \(\d+%\)")).ToList();
            Assert.True(progress.Count is >= 2 and <= 11, "sft progress lines:\n" + r.Stderr);
            Assert.Equal(progress.Count, progress.Distinct().Count());
            Assert.Contains("(100%)", progress[^1]);
            Assert.DoesNotContain(lines, l => l.Contains("-0 ") || l.EndsWith("-0"));
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    static PolicyScore Score(double gold, double lo, double hi, double kl) => new()
    {
        GoldMean = gold, GoldCi95 = [lo, hi], ProxyMean = -0.0002, ProxyCi95 = [-0.1, 0.1], KlToSft = kl, KlCi95 = [0, 0], Samples = 200,
    };

    [Fact]
    public void The_final_table_fits_80_columns_with_whole_intervals_and_no_minus_zero()
    {
        var summary = new PipelineSummary
        {
            Policies = new()
            {
                ["base"] = Score(-1.234, -1.456, -1.012, 12.345),
                ["best_of_4"] = Score(0.5, 0.4, 0.6, 0.6363),
                ["reinforce_pp_baseline"] = Score(2.345, 2.1, 2.59, 3.21) with { TrainSeconds = 1234, TrainTokensPerSecond = 45678 },
            },
            RmAccuracy = 0.642, RmEvalRankings = 160, RmTrainRankings = 1440, AnnotatorGoldAgreement = 0.73,
            RmGoldAccuracy = 0.754, HeldOutAnnotatorGoldAgreement = 0.721,
            PrmVsRmBestOfN = new() { ["best_of_4_prm_product"] = new PairedDifference { Mean = -0.0114, Ci95 = [-0.0271, 0.0043] } },
        };
        var lines = SummaryTable.Lines(summary);
        Assert.All(lines, l => Assert.True(l.Length <= 80, $"{l.Length} columns: {l}"));
        Assert.Contains(lines, l => l.Contains("[-1.456, -1.012]"));
        Assert.Contains(lines, l => l.StartsWith("reinforce_pp_baseline") && l.Contains("[2.100, 2.590]") && l.EndsWith("45678"));
        Assert.DoesNotContain(lines, l => l.Contains("-0.000"));
        Assert.Contains("RM accuracy 0.642,", lines[^1]);
        Assert.Contains("gold best_of_4_prm_product − RM's pick, paired: -0.011 [-0.027, 0.004]", lines);
        Assert.Contains("RM accuracy against gold order 0.754; held-out annotators vs gold 0.721", lines);
    }

    [Fact]
    public void Rm_accuracy_without_held_out_rankings_is_na_with_the_reason()
    {
        var summary = new PipelineSummary { RmAccuracy = null, RmTrainRankings = 1, RmEvalRankings = 0 };
        var last = SummaryTable.Lines(summary)[^1];
        Assert.StartsWith("RM accuracy n/a (no held-out rankings: 1 ranking is too few to hold any out", last);
        Assert.DoesNotContain("0.000,", last);
    }
}
