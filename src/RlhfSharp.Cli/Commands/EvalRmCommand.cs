using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Evaluation;
using RlhfSharp.Models;
using RlhfSharp.Reporting;
using RlhfSharp.Tokenization;
using Spectre.Console;
using static TorchSharp.torch;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// <c>rlhf eval-rm --model RM --data FILE</c> (also <c>rlhf eval --reward-model RM --data FILE</c>): a reward model on
/// labelled preferences or rankings, scored as <c>rlhf rm</c> trains (<see cref="RewardModelScores"/>), reported by
/// <see cref="RewardModelAccuracy"/>: pairwise accuracy and mean margin, accuracy per RewardBench <c>subset</c>, accuracy
/// against K-wise rankings, and the calibration table.
/// </summary>
public static class EvalRmCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Reward model folder (HF *ForSequenceClassification, e.g. runs/<name>/rm/checkpoint).", Required = true };
        var data = Data();
        var (samples, output, bins, maxLength) = Options();
        var dtype = DtypeOption.Create();
        var command = new Command("eval-rm", "Evaluate a reward model on preference pairs or K-wise rankings: accuracy, margin, per-subset accuracy, calibration.")
            { model, data, samples, output, bins, maxLength, dtype };
        command.SetAction(r => Program.Run(() => Run(r.GetValue(model)!, r.GetValue(data)!, r.GetValue(samples), r.GetValue(output)!, r.GetValue(bins),
            r.GetValue(maxLength), DtypeOption.Read(r, dtype))));
        return command;
    }

    internal static Option<string> Data() => new("--data") { Description = "Preferences (prompt/chosen/rejected, HH-style chosen/rejected, optional subset) or rankings (prompt/responses/ranking).", Required = true };

    /// <summary>The options <c>rlhf eval --reward-model</c> shares with this command.</summary>
    internal static (Option<int> Samples, Option<string> Output, Option<int> Bins, Option<int> MaxLength) Options() => (
        new Option<int>("--samples") { Description = "Evaluate the first N records (0 = all).", DefaultValueFactory = _ => 0 },
        new Option<string>("--out", "-o") { Description = "Folder for metrics.json and rm_eval.json.", DefaultValueFactory = _ => "eval" },
        new Option<int>("--bins") { Description = "Calibration bins over [0, 1].", DefaultValueFactory = _ => 10 },
        new Option<int>("--max-length") { Description = "Longest sequence scored, in tokens (rlhf rm's max_length; the EOS is kept).", DefaultValueFactory = _ => 512 });

    internal static int Run(string modelPath, string dataPath, int limit, string dir, int bins, int maxLength, ScalarType dtype)
    {
        var rankings = DatasetLoader.LoadRankings(dataPath).Records;
        if (limit > 0) rankings = rankings.Take(limit).ToList();
        if (rankings.Count == 0) throw new RlhfException($"{dataPath}: no preferences or rankings in the file.");
        string folder = PretrainedModel.Resolve(modelPath);
        if (!Directory.Exists(folder)) throw new RlhfException($"{modelPath}: a reward model is an HF folder (config.json, model.safetensors, tokenizer).");
        // A T5 reward model (rlhf rm on a T5 folder) reads prompt + response as T5's tokenizer encodes the text, no BOS, then EOS.
        using var module = PretrainedSeq2SeqModel.IsSeq2Seq(folder)
            ? (TorchSharp.torch.nn.Module)T5Checkpoint.LoadSequenceClassification(folder, dtype) : HuggingFaceCheckpoint.LoadScoreModel(folder, dtype);
        var rm = (IRewardModel)module;
        var tokenizer = TokenizerLoader.Load(folder);
        var groups = RewardModelScores.Tokenize(rankings, tokenizer, rm is ScoreModel score && RewardModelScores.AddsBos(tokenizer, score.Config), maxLength);
        var scores = RewardModelScores.Score(rm, groups, tokenizer.PadId ?? tokenizer.EosId ?? 0);
        var report = RewardModelAccuracy.Compute(scores.Select((s, i) => new ScoredRanking(s, rankings[i].Subset)).ToList(), bins);

        var metrics = new Dictionary<string, double>
        {
            ["groups"] = report.Groups, ["pairs"] = report.Pairs, ["ties"] = report.Ties, ["accuracy"] = report.Accuracy, ["mean_margin"] = report.MeanMargin,
            ["expected_calibration_error"] = report.ExpectedCalibrationError,
        };
        if (report.Rankings > 0)
        {
            metrics["rankings"] = report.Rankings;
            metrics["ranking_pair_accuracy"] = report.RankingPairAccuracy;
            metrics["ranking_exact_match"] = report.RankingExactMatch;
            metrics["ranking_top1"] = report.RankingTop1;
        }
        foreach (var s in report.BySubset) metrics[$"accuracy/{s.Subset}"] = s.Accuracy;
        MetricsReport.WriteJson(dir, metrics);
        File.WriteAllText(Path.Combine(dir, "rm_eval.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions
        {
            WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        }));

        static string F(double v) => double.IsFinite(v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "–";
        var table = new Table().Title(Markup.Escape($"{modelPath} on {Path.GetFileName(dataPath)}")).AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
        foreach (var (k, v) in metrics) table.AddRow(Markup.Escape(k), k is "groups" or "pairs" or "ties" or "rankings" ? v.ToString("0", CultureInfo.InvariantCulture) : F(v));
        AnsiConsole.Write(table);
        if (report.BySubset.Count > 0)
        {
            var subsets = new Table().Title("accuracy by subset").AddColumn("subset").AddColumn(new TableColumn("pairs").RightAligned())
                .AddColumn(new TableColumn("accuracy").RightAligned()).AddColumn(new TableColumn("mean margin").RightAligned());
            foreach (var s in report.BySubset) subsets.AddRow(Markup.Escape(s.Subset), s.Pairs.ToString(CultureInfo.InvariantCulture), F(s.Accuracy), F(s.MeanMargin));
            AnsiConsole.Write(subsets);
        }
        var calibration = new Table().Title(Markup.Escape("calibration: P(a ≻ b) = σ(r_a − r_b), each pair in both orders")).AddColumn("predicted")
            .AddColumn(new TableColumn("pairs").RightAligned()).AddColumn(new TableColumn("mean predicted").RightAligned()).AddColumn(new TableColumn("observed").RightAligned());
        foreach (var b in report.Calibration)
            calibration.AddRow(Markup.Escape($"[{F(b.Lower)}, {F(b.Upper)})"), b.Count.ToString(CultureInfo.InvariantCulture), F(b.MeanPredicted), F(b.Observed));
        AnsiConsole.Write(calibration);
        Console.WriteLine($"wrote {Path.Combine(dir, "metrics.json")} and rm_eval.json");
        return 0;
    }
}
