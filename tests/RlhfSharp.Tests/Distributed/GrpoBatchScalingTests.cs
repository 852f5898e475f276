using RlhfSharp.Training;
using Xunit.Abstractions;

namespace RlhfSharp.Tests.Distributed;

/// <summary>
/// GRPO with batch-scaled rewards (TRL <c>scale_rewards="batch"</c>) under mpirun: TRL gathers every process's rewards
/// before it takes the std, so each rank must divide by the std of the step's whole batch, the number one process would
/// compute over the same completions, not by the std of its own share. Sampled rollouts (temperature 1) so the groups'
/// completions differ; each rank samples its own, so the check is on the logged scale against the logged batch std.
/// </summary>
public sealed class GrpoBatchScalingTests(ITestOutputHelper output) : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("rlhf-mpi-grpo-").FullName;
    public void Dispose() { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } }

    [Fact]
    public void Two_ranks_divide_by_the_std_of_the_whole_batch_as_one_process_does()
    {
        string hh = "data/hh-rlhf-helpful-base-sample/test-first200.jsonl.gz";
        string recipe = Path.Combine(dir, "recipe.json");
        File.WriteAllText(recipe, $$"""
        {
          "name": "mpi-grpo", "model": "stories260k", "ppo_prompts": "{{hh}}", "max_records": 16, "max_prompt_tokens": 24,
          "rewards": [{ "source": "length", "target_words": 8, "penalty_per_word": 0.2 }],
          "grpo": { "steps": 3, "prompts_per_step": 8, "group_size": 2, "mini_batch_size": 4, "max_new_tokens": 16, "temperature": 1.0,
                    "reward_scaling": "batch", "optimizer": { "learning_rate": 1e-4 } }
        }
        """);
        foreach (int ranks in new[] { 1, 2 })
        {
            string run = Path.Combine(dir, $"np{ranks}");
            var r = MpiRun.Run(ranks, null, "grpo", "--recipe", recipe, "--out", run);
            Assert.True(r.ExitCode == 0, $"{ranks} rank(s): {r.Stderr}{r.Stdout}");
            var rows = MetricsLog.Read(Path.Combine(run, "grpo", "metrics.jsonl")).ToList();
            Assert.Equal(3, rows.Count);
            foreach (var row in rows)
            {
                output.WriteLine($"{ranks} rank(s), step {row["step"]}: reward_scale {row["reward_scale"]:F6}, batch reward_std {row["reward_std"]:F6}");
                Assert.True(row["reward_std"] > 0, "every completion scored alike: the scaling is not exercised");
                // reward_std is the unbiased std of every rank's scores (all-reduced sums), what one process computes.
                Assert.True(Math.Abs(row["reward_scale"] - row["reward_std"]) <= 1e-5 * Math.Max(1, row["reward_std"]),
                    $"{ranks} rank(s), step {row["step"]}: advantages divided by {row["reward_scale"]}, the batch's std is {row["reward_std"]}");
            }
        }
    }
}
