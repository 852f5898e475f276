using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Cli;

/// <summary>
/// Issue 14, <c>rlhf eval-rm</c> on a decoder-only reward model: the shipped HH-RLHF sample, a RewardBench-style file with
/// a subset column and a K-wise ranking file; <c>rlhf eval --reward-model</c> reports the same.
/// </summary>
public sealed class EvalRmCliTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-eval-rm-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    /// <summary>stories260K with a fresh, seeded score head, as <c>rlhf rm</c> starts one.</summary>
    string RewardModel()
    {
        using var base_ = PretrainedModel.Load("stories260k");
        string lm = Path.Combine(tmp, "lm"), rm = Path.Combine(tmp, "rm");
        HuggingFaceCheckpoint.Save(base_.Model, lm, writeExtras: base_.WriteTokenizerFiles);
        manual_seed(3);
        using var model = HuggingFaceCheckpoint.LoadScoreModel(lm, allowNewHead: true);
        HuggingFaceCheckpoint.Save(model, rm, writeExtras: base_.WriteTokenizerFiles);
        return rm;
    }

    static JsonNode Json(string path) => JsonNode.Parse(File.ReadAllText(path))!;

    static string RepoFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, relative))) return Path.Combine(d.FullName, relative);
        throw new FileNotFoundException(relative);
    }

    [Fact]
    public void Eval_rm_reports_the_shipped_hh_sample_subsets_and_rankings_and_eval_reward_model_agrees()
    {
        string rm = RewardModel();
        string hh = RepoFile("data/hh-rlhf-helpful-base-sample/test-first200.jsonl.gz");
        string a = Path.Combine(tmp, "a"), b = Path.Combine(tmp, "b");
        var r = RlhfProcess.Run("eval-rm", "--model", rm, "--data", hh, "--samples", "8", "--max-length", "160", "--bins", "5", "--out", a);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        var metrics = Json(Path.Combine(a, "metrics.json"));
        Assert.Equal(8.0, (double)metrics["pairs"]!);
        Assert.InRange((double)metrics["accuracy"]!, 0.0, 1.0);
        Assert.True(double.IsFinite((double)metrics["mean_margin"]!));
        // Each labelled pair counts in both orders in the calibration table.
        var bins = Json(Path.Combine(a, "rm_eval.json"))["calibration"]!.AsArray();
        Assert.Equal(5, bins.Count);
        Assert.Equal(16, bins.Sum(x => (int)x!["count"]!));
        r = RlhfProcess.Run("eval", "--reward-model", rm, "--data", hh, "--samples", "8", "--max-length", "160", "--bins", "5", "--out", b);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        // The same options mean the same report (rlhf eval --reward-model fixed them at 10 bins and 512 tokens before).
        Assert.Equal(File.ReadAllText(Path.Combine(a, "rm_eval.json")), File.ReadAllText(Path.Combine(b, "rm_eval.json")));

        string bench = Path.Combine(tmp, "bench.jsonl");
        File.WriteAllLines(bench, Enumerable.Range(0, 6).Select(i => new JsonObject
        {
            ["prompt"] = $"Once upon a time {i}", ["chosen"] = " Lily smiled and shared her toy.", ["rejected"] = " The dog was bad.",
            ["subset"] = i < 4 ? "chat" : "safety",
        }.ToJsonString()));
        r = RlhfProcess.Run("eval-rm", "--model", rm, "--data", bench, "--out", Path.Combine(tmp, "bench"));
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        metrics = Json(Path.Combine(tmp, "bench", "metrics.json"));
        var subsets = Json(Path.Combine(tmp, "bench", "rm_eval.json"))["by_subset"]!.AsArray();
        Assert.Equal(["chat", "safety"], subsets.Select(s => (string)s!["subset"]!));
        Assert.Equal(4, (int)subsets[0]!["pairs"]!);
        foreach (var s in new[] { "chat", "safety" }) Assert.InRange((double)metrics[$"accuracy/{s}"]!, 0.0, 1.0);

        string ranks = Path.Combine(tmp, "ranks.jsonl");
        File.WriteAllLines(ranks, Enumerable.Range(0, 3).Select(i => new JsonObject
        {
            ["prompt"] = $"Tom had a ball {i}", ["responses"] = new JsonArray(" He played.", " He was sad.", " The sun was hot."), ["ranking"] = new JsonArray(0, 2, 1),
        }.ToJsonString()));
        r = RlhfProcess.Run("eval-rm", "--model", rm, "--data", ranks, "--out", Path.Combine(tmp, "ranks"));
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        metrics = Json(Path.Combine(tmp, "ranks", "metrics.json"));
        Assert.Equal(3.0, (double)metrics["rankings"]!);
        Assert.Equal(9.0, (double)metrics["pairs"]!); // C(3, 2) pairs per ranking
        foreach (var k in new[] { "ranking_pair_accuracy", "ranking_exact_match", "ranking_top1" }) Assert.InRange((double)metrics[k]!, 0.0, 1.0);
    }
}
