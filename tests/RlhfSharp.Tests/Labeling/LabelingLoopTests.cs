using RlhfSharp.Data;
using RlhfSharp.Labeling;
using RlhfSharp.Pipeline;
using RlhfSharp.Tests.Cli;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Labeling;

/// <summary>
/// The whole loop as docs/labeling.md tells it, through the real CLI: serve with model-generated candidates,
/// simulated annotators labelling over HTTP, export, reward model, PPO.
/// </summary>
public class LabelingLoopTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>Short version (CI): 6 prompts, labels, export, reward model, one PPO step. Full (RLHF_SLOW=1): 12 prompts and two PPO steps.</summary>
    [Fact]
    [Trait("Speed", "Slow")]
    public async Task Generated_candidates_labelled_over_http_export_to_files_rm_and_ppo_train_on()
    {
        using var dir = new TempDir();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void Step(string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1} s  {what}");
        string db = Path.Combine(dir.Path, "labels.db"), prompts = Path.Combine(dir.Path, "prompts.jsonl");
        File.WriteAllLines(prompts, StoryPrompts.Split(Slow.Pick(6, 12), 1, 5).Train.Select(p => System.Text.Json.JsonSerializer.Serialize(new { prompt = p })));
        var tokens = Enumerable.Range(0, 3).Select(i =>
        {
            var add = RlhfProcess.Run("label", "add-annotator", $"sim{i}", "--db", db);
            Assert.True(add.ExitCode == 0, add.Stderr);
            return add.Stdout.Trim();
        }).ToList();
        var admin = RlhfProcess.Run("label", "add-annotator", "boss", "--admin", "--db", db).Stdout.Trim();
        Step("annotators added");

        using (var server = new LabelServerProcess(db, "--model", "stories260k", "--prompts", prompts, "--k", "4", "--max-new-tokens", Slow.Pick(16, 24).ToString(), "--per-item", "3"))
        {
            await server.StartAsync();
            Step("server up with generated candidates");
            Assert.Contains("new rank items with responses from stories260k", server.Log);
            var simulate = RlhfProcess.Run(["label", "simulate", "--url", server.Url.ToString(), .. tokens.SelectMany(t => new[] { "--token", t })]);
            Assert.True(simulate.ExitCode == 0, simulate.Stderr + simulate.Stdout);
            Assert.Matches(@"^(\d+) labels from 3 simulated annotators", simulate.Stdout);
            Step("simulated annotators done");

            using var http = new HttpClient { BaseAddress = server.Url };
            http.DefaultRequestHeaders.Authorization = new("Bearer", admin);
            using var stats = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/admin/stats"));
            var rank = stats.RootElement.GetProperty("tasks").EnumerateArray().Single();
            long items = rank.GetProperty("items").GetInt64();
            Assert.InRange(items, Slow.Pick(4, 10), Slow.Pick(6, 12)); // a prompt whose samples were not 2+ distinct texts is skipped
            // Every item got its three labels, one per simulated annotator.
            Assert.Equal(items, rank.GetProperty("complete").GetInt64());
            Assert.Equal(3 * items, stats.RootElement.GetProperty("labels").GetInt64());
            Assert.Equal($"{3 * items} labels from 3 simulated annotators", simulate.Stdout.Trim());
        }

        string kwise = Path.Combine(dir.Path, "kwise.jsonl"), pairwise = Path.Combine(dir.Path, "pairwise.jsonl");
        Assert.Equal(0, RlhfProcess.Run("label", "export", "--db", db, "--format", "kwise", "--out", kwise).ExitCode);
        Assert.Equal(0, RlhfProcess.Run("label", "export", "--db", db, "--format", "pairwise", "--out", pairwise).ExitCode);
        var rankings = DatasetLoader.LoadRankings(kwise).Records;
        var pairs = DatasetLoader.LoadPreferences(pairwise).Records;
        Assert.Equal(pairs.Count, rankings.Sum(r => r.Responses.Count * (r.Responses.Count - 1) / 2));

        Step("exported");
        string run = Path.Combine(dir.Path, "run");
        var rm = RlhfProcess.Run("rm", "--out", run, "--set", $"rm_data={kwise}", "--set", "rm.epochs=1", "--set", "rm.max_length=96");
        Assert.True(rm.ExitCode == 0, rm.Stderr + rm.Stdout);
        Assert.Contains("eval_accuracy", rm.Stdout);
        Step("reward model trained");
        // PPO on that reward model runs in both versions: one short step in CI, two longer ones under RLHF_SLOW=1.
        int ppoSteps = Slow.Pick(1, 2);
        var ppo = RlhfProcess.Run("ppo", "--out", run, "--set", $"ppo_prompts={prompts}", "--set", $"ppo.steps={ppoSteps}", "--set", "ppo.rollout_batch_size=4",
            "--set", "ppo.mini_batch_size=4", "--set", $"ppo.max_new_tokens={Slow.Pick(8, 16)}");
        Assert.True(ppo.ExitCode == 0, ppo.Stderr + ppo.Stdout);
        Assert.Equal(ppoSteps, File.ReadAllLines(Path.Combine(run, "ppo", "metrics.jsonl")).Length);
        Step("ppo trained");
    }
}
