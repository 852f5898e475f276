using System.Globalization;
using RlhfSharp.Data;
using RlhfSharp.Evaluation;
using RlhfSharp.Reporting;
using RlhfSharp.Rewards;
using Spectre.Console;
using static TorchSharp.torch;

namespace RlhfSharp.Cli.Commands;

/// <summary><c>rlhf eval --prm PRM --data STEPS</c>: a process reward model's step scores against step labels (<see cref="ProcessRewardAccuracy"/>).</summary>
static class EvalPrmSteps
{
    public static int Run(string prmPath, string dataPath, int limit, string dir, ScalarType dtype)
    {
        var loaded = DatasetLoader.LoadStepwise(dataPath).Records;
        var records = limit > 0 ? loaded.Take(limit).ToList() : loaded.ToList();
        if (records.Count == 0) throw new RlhfException($"{dataPath}: no step-labelled completions in the file.");
        using var prm = ProcessRewardModel.Load(prmPath, StepAggregation.Min, dtype);
        var report = ProcessRewardAccuracy.Compute(prm.StepScores(records), records.Select(r => r.Labels).ToList());
        var metrics = new Dictionary<string, double>
        {
            ["steps"] = report.Steps, ["step_accuracy"] = report.StepAccuracy, ["mean_score_good_steps"] = report.MeanGoodScore,
            ["mean_score_bad_steps"] = report.MeanBadScore, ["solutions"] = report.Solutions, ["solution_accuracy_min"] = report.SolutionAccuracy,
        };
        MetricsReport.WriteJson(dir, metrics);
        var table = new Table().AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
        foreach (var (k, v) in metrics) table.AddRow(Markup.Escape(k), double.IsFinite(v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "–");
        AnsiConsole.Write(table);
        Console.WriteLine($"wrote {Path.Combine(dir, "metrics.json")}");
        return 0;
    }
}
