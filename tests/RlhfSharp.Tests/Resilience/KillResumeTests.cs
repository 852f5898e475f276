using System.Text.Json.Nodes;
using RlhfSharp.Training;
using Xunit.Abstractions;

namespace RlhfSharp.Tests.Resilience;

/// <summary>
/// Issue #7 item 2: SFT, RM and PPO runs of the real CLI are SIGKILLed at seeded random points (after a random step,
/// at startup, and inside a checkpoint write) and resumed with <c>--resume</c> each time; the final weights must hash
/// the same as an uninterrupted run's, the metrics log must read as the uninterrupted one's, and the run folder
/// must hold nothing half-written. Short version: 2 kills per stage; <c>RLHF_SLOW=1</c>: 10.
/// </summary>
[Trait("Speed", "Slow")]
public sealed class KillResumeTests(ITestOutputHelper output) : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-kill-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static int Kills => Slow.Pick(2, 10);
    const string Hh = "data/hh-rlhf-helpful-base-sample/test-first200.jsonl.gz";

    [Fact]
    public void Sft_killed_at_random_points_resumes_to_the_uninterrupted_weights()
    {
        string demos = WriteDemonstrations(Slow.Pick(24, 60));
        int steps = (int)Math.Ceiling((Slow.Pick(24, 60) - Math.Max(1, Slow.Pick(24, 60) / 10)) / 4.0) * 2;
        var recipe = new JsonObject
        {
            ["name"] = "kill-sft", ["model"] = "stories260k", ["sft_data"] = demos,
            ["sft"] = new JsonObject { ["epochs"] = 2, ["batch_size"] = 4, ["max_length"] = 64, ["save_every"] = 1, ["optimizer"] = new JsonObject { ["learning_rate"] = 1e-3 } },
        };
        KillAndCompare("sft", recipe, steps, seed: 1, prepare: null);
    }

    [Fact]
    public void Reward_model_killed_at_random_points_resumes_to_the_uninterrupted_weights()
    {
        int records = Slow.Pick(30, 120);
        var recipe = new JsonObject
        {
            ["name"] = "kill-rm", ["model"] = "stories260k", ["rm_data"] = Hh, ["max_records"] = records,
            ["rm"] = new JsonObject { ["epochs"] = 1, ["prompts_per_batch"] = 4, ["max_length"] = 64, ["save_every"] = 1, ["optimizer"] = new JsonObject { ["learning_rate"] = 1e-3 } },
        };
        KillAndCompare("rm", recipe, (records - records / 10 + 3) / 4, seed: 2, prepare: null);
    }

    [Fact]
    public void Ppo_killed_at_random_points_resumes_to_the_uninterrupted_weights()
    {
        int steps = Slow.Pick(6, 24);
        var recipe = new JsonObject
        {
            ["name"] = "kill-ppo", ["model"] = "stories260k", ["rm_data"] = Hh, ["ppo_prompts"] = Hh, ["max_records"] = 16, ["max_prompt_tokens"] = 24,
            ["rm"] = new JsonObject { ["epochs"] = 1, ["prompts_per_batch"] = 8, ["max_length"] = 48 },
            // Adaptive KL and an EMA actor: both are state a resume must restore (the final checkpoint is the EMA).
            ["ppo"] = new JsonObject
            {
                ["steps"] = steps, ["rollout_batch_size"] = 4, ["mini_batch_size"] = 2, ["max_new_tokens"] = 8, ["ptx_coef"] = 0, ["save_every"] = 1,
                ["kl_target_per_sequence"] = 0.5, ["kl_horizon"] = 100, ["ema_beta"] = 0.9,
                ["actor_optimizer"] = new JsonObject { ["learning_rate"] = 1e-3 }, ["critic_optimizer"] = new JsonObject { ["learning_rate"] = 1e-3 },
            },
        };
        KillAndCompare("ppo", recipe, steps, seed: 3, prepare: (recipeFile, runDir) =>
        {
            var r = FaultRun.Run(["rm", "--recipe", recipeFile, "--out", runDir]);
            Assert.True(r.ExitCode == 0, r.Stderr);
        });
    }

    enum KillKind { AfterStep, AtStartup, InsideCheckpointWrite }

    void KillAndCompare(string stage, JsonObject recipe, int steps, int seed, Action<string, string>? prepare)
    {
        string recipeFile = Path.Combine(tmp, "recipe.json");
        File.WriteAllText(recipeFile, recipe.ToJsonString());
        string reference = Path.Combine(tmp, "reference"), killed = Path.Combine(tmp, "killed");
        if (prepare is not null)
        {
            prepare(recipeFile, reference);
            CopyFolder(reference, killed);
        }

        var whole = FaultRun.Run([stage, "--recipe", recipeFile, "--out", reference]);
        Assert.True(whole.ExitCode == 0, whole.Stderr);
        FaultRun.AssertWhole(reference, stage, steps);

        string stageDir = Path.Combine(killed, stage);
        var rng = new Random(seed);
        var kinds = Enumerable.Range(0, Kills).Select(i => (i % 3) switch { 1 => KillKind.InsideCheckpointWrite, 2 when i == 2 => KillKind.AtStartup, _ => KillKind.AfterStep }).ToList();
        var log = new List<string>();
        for (int k = 0; k < kinds.Count; k++)
        {
            var kind = kinds[k];
            var state = new StageState(stageDir);
            int saved = state.SavedStep ?? 0;
            int target = Math.Max(FaultRun.MetricRows(stageDir), saved) + 1 + rng.Next(0, Math.Max(1, (steps - saved) / (kinds.Count - k + 2)));
            Assert.True(target < steps, $"{stage}: {steps} steps are too few for {kinds.Count} kills (at step {saved})");
            var started = DateTime.UtcNow;
            var outcome = kind switch
            {
                KillKind.AfterStep => FaultRun.Run([stage, "--recipe", recipeFile, "--out", killed, "--resume"],
                    () => FaultRun.MetricRows(stageDir) >= target, extraDelayMs: rng.Next(0, 40)),
                KillKind.AtStartup => FaultRun.Run([stage, "--recipe", recipeFile, "--out", killed, "--resume"],
                    () => DateTime.UtcNow - started > TimeSpan.FromMilliseconds(300), extraDelayMs: rng.Next(0, 1200)),
                // The hook holds the write open 400 ms after the tensors are on disk; the kill lands inside it.
                _ => FaultRun.Run([stage, "--recipe", recipeFile, "--out", killed, "--resume"],
                    () => FaultRun.WritingCheckpointAbove(stageDir, saved + 1), extraDelayMs: rng.Next(0, 200),
                    env: new Dictionary<string, string> { ["RLHF_FAULT_CHECKPOINT_SLEEP_MS"] = "400" }),
            };
            Assert.True(outcome.Killed, $"{stage}: the run ended before the {kind} kill (exit {outcome.ExitCode}): {outcome.Stderr}");
            bool inWrite = kind == KillKind.InsideCheckpointWrite && FaultRun.WritingCheckpointAbove(stageDir, saved + 1);
            if (kind == KillKind.InsideCheckpointWrite) Assert.True(inWrite, $"{stage}: the kill missed the checkpoint write");
            // Every checkpoint folder under a step name is whole at every kill; a torn write is only ever a hidden temp folder.
            var after = new StageState(stageDir);
            int named = Directory.Exists(after.StateDir) ? Directory.GetDirectories(after.StateDir, "step-*").Length : 0;
            Assert.Equal(named, after.SavedSteps.Count);
            Assert.True(after.SavedSteps.Count <= 2, "keep_last = 2");
            log.Add($"{kind} at step {after.SavedStep ?? 0}");
        }
        var final = FaultRun.Run([stage, "--recipe", recipeFile, "--out", killed, "--resume"]);
        Assert.True(final.ExitCode == 0, final.Stderr);
        output.WriteLine($"{stage}: {kinds.Count} kills, then resumed to step {steps}: {string.Join("; ", log)}");

        FaultRun.AssertWhole(killed, stage, steps);
        Assert.Equal(FaultRun.Sha256(Path.Combine(reference, stage, "checkpoint", "model.safetensors")),
            FaultRun.Sha256(Path.Combine(killed, stage, "checkpoint", "model.safetensors")));
        Assert.Equal(Deterministic(Path.Combine(reference, stage, "metrics.jsonl")), Deterministic(Path.Combine(killed, stage, "metrics.jsonl")));
    }

    /// <summary>The metrics rows without the wall-clock columns.</summary>
    static List<string> Deterministic(string metrics) => File.ReadAllLines(metrics).Select(l =>
    {
        var o = JsonNode.Parse(l)!.AsObject();
        foreach (var key in o.Select(kv => kv.Key).Where(k => k.Contains("per_s") || k.StartsWith("time_")).ToList()) o.Remove(key);
        return o.ToJsonString();
    }).ToList();

    string WriteDemonstrations(int count)
    {
        string[] names = ["Lily", "Tom", "Sam", "Mia", "Ben", "Sue"], things = ["a red ball", "a big dog", "a small cat", "a blue car", "a tall tree"];
        var lines = Enumerable.Range(0, count).Select(i =>
        {
            string n = names[i % names.Length], t = things[i * 7 % things.Length];
            return new JsonObject { ["prompt"] = $"Write a story about {n} and {t}.", ["completion"] = $" Once upon a time, {n} found {t}. {n} was happy." }.ToJsonString();
        });
        string path = Path.Combine(tmp, "demos.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
