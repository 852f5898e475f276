using System.Text.Json.Nodes;
using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Resilience;

/// <summary>The run state on disk (issue #7 item 1): last-k checkpoints, verification on load, torch's RNG, trimmed metrics.</summary>
[Collection(ProcessWideStateCollection.Name)] // saves, draws from and restores torch's global generator
public sealed class StageStateTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-state-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Fact]
    public void Keeps_the_last_k_checkpoints_and_falls_back_to_the_previous_one_when_the_newest_is_damaged()
    {
        using var layer = nn.Linear(3, 2);
        using var opt = new Optimizer(layer.parameters(), new OptimizerConfig { LearningRate = 0.1 }, 10);
        var modules = new Dictionary<string, nn.Module> { ["policy"] = layer };
        var optimizers = new Dictionary<string, Optimizer> { ["policy"] = opt };
        var state = new StageState(Path.Combine(tmp, "sft"), keepLast: 2);
        var weightAt = new Dictionary<int, float>();
        for (int step = 1; step <= 4; step++)
        {
            using (no_grad()) layer.weight!.fill_(step);
            weightAt[step] = step;
            state.Save(step, modules, optimizers, new JsonObject { ["kl_coef"] = 0.1 * step });
        }
        Assert.Equal([3, 4], state.SavedSteps);
        Assert.Equal(4, state.SavedStep);
        Assert.Equal(0.4, state.SavedExtra!["kl_coef"]!.GetValue<double>(), 12);

        // A newest checkpoint whose file lost bytes (a disk that lied about fsync) is passed over for step 3.
        string newest = Path.Combine(state.StateDir, "step-00000004", "policy.safetensors");
        File.WriteAllBytes(newest, File.ReadAllBytes(newest)[..100]);
        Assert.Equal(3, state.SavedStep);
        using (no_grad()) layer.weight!.fill_(-1);
        state.Load(modules, optimizers);
        Assert.Equal(3f, layer.weight!.data<float>()[0]);

        // The next save removes the damaged folder and a temporary folder a killed write left behind.
        Directory.CreateDirectory(Path.Combine(state.StateDir, ".step-00000005.tmp-dead"));
        state.Save(5, modules, optimizers);
        Assert.Equal([3, 5], state.SavedSteps);
        Assert.Equal(["step-00000003", "step-00000005"], Directory.GetDirectories(state.StateDir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Load_restores_torchs_global_random_stream()
    {
        using var layer = nn.Linear(2, 2);
        using var opt = new Optimizer(layer.parameters(), new OptimizerConfig(), 1);
        var state = new StageState(Path.Combine(tmp, "rng"));
        torch.manual_seed(7);
        state.Save(1, new Dictionary<string, nn.Module> { ["m"] = layer }, new Dictionary<string, Optimizer> { ["m"] = opt });
        var expected = torch.rand(5).data<float>().ToArray();
        torch.manual_seed(12345);
        state.Load(new Dictionary<string, nn.Module> { ["m"] = layer }, new Dictionary<string, Optimizer> { ["m"] = opt });
        Assert.Equal(expected, torch.rand(5).data<float>().ToArray());
    }

    [Fact]
    public void Resuming_drops_the_metrics_rows_written_after_the_checkpoint_and_a_line_cut_by_a_kill()
    {
        string path = Path.Combine(tmp, "metrics.jsonl");
        File.WriteAllText(path, string.Concat(Enumerable.Range(1, 7).Select(i => $"{{\"step\":{i},\"loss\":{i * 0.5}}}\n")) + "{\"step\":8,\"lo");
        using (var log = MetricsLog.Resuming(path, savedStep: 5))
        {
            Assert.Equal([1.0, 2, 3, 4, 5], log.Rows.Select(r => r["step"]));
            log.Write(new Dictionary<string, double> { ["step"] = 6, ["loss"] = 3 });
        }
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (double)i), File.ReadAllLines(path).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<double>()));
        using (MetricsLog.Resuming(path, savedStep: null)) { }
        Assert.Equal("", File.ReadAllText(path)); // a fresh start (no checkpoint) starts a fresh log
    }
}
