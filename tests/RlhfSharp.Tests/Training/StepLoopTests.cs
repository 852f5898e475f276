using RlhfSharp.Algorithms.GroupRl;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Pipeline;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// The one step loop every trained stage runs on, and the pieces around it that are written once: the seeded order,
/// the config checks, the method table and the "is this stage done" decision.
/// </summary>
public sealed class StepLoopTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-steploop-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    /// <summary>A one-parameter "model" whose step adds the step's number, so the weight records which steps ran.</summary>
    sealed class Counter : nn.Module
    {
        public readonly TorchSharp.Modules.Parameter w = new(zeros(1));
        public Counter() : base("counter") => RegisterComponents();
    }

    Dictionary<string, double> Run(string dir, int total, CancellationTokenSource? cancelAfter, int? cancelAt, List<Dictionary<string, double>> rows, Counter model)
    {
        var state = new StageState(dir);
        using var optimizer = new Optimizer(model.parameters(), new OptimizerConfig { LearningRate = 0 }, total);
        using var metrics = new MetricsLog(null);
        var loop = new StepLoop
        {
            Stage = "test", TotalSteps = total, State = state, SaveEvery = 0, Metrics = metrics,
            Modules = new Dictionary<string, nn.Module> { ["policy"] = model }, Optimizers = new Dictionary<string, Optimizer> { ["policy"] = optimizer },
            StepsPerEpoch = 2, Evaluate = () => new Dictionary<string, double> { ["eval"] = model.w.item<float>() },
        };
        try
        {
            return loop.Run((s, row) =>
            {
                using (no_grad()) model.w.add_(s + 1);
                row["w"] = model.w.item<float>();
                if (s + 1 == cancelAt) cancelAfter!.Cancel();
            }, cancelAfter?.Token ?? default);
        }
        finally { rows.AddRange(metrics.Rows); }
    }

    [Fact]
    public void A_cancelled_loop_saves_its_step_and_the_resumed_run_writes_the_rows_of_an_uninterrupted_one()
    {
        var straight = new List<Dictionary<string, double>>();
        var last = Run(Path.Combine(tmp, "a"), 5, null, null, straight, new Counter());

        var first = new List<Dictionary<string, double>>();
        using var cancel = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() => Run(Path.Combine(tmp, "b"), 5, cancel, 3, first, new Counter()));
        Assert.Equal(3, new StageState(Path.Combine(tmp, "b")).SavedStep);
        var resumed = new List<Dictionary<string, double>>();
        var model = new Counter();
        var resumedLast = Run(Path.Combine(tmp, "b"), 5, null, null, resumed, model);

        // 1+2+3+4+5: the saved weight (after 3 steps) was restored and steps 4 and 5 ran once each.
        Assert.Equal(15f, model.w.item<float>());
        Assert.Equal(straight.Select(r => r.OrderBy(kv => kv.Key).ToList()), first.Concat(resumed).Select(r => r.OrderBy(kv => kv.Key).ToList()));
        Assert.Equal(last, resumedLast);
        // The row starts with the step; eval lands on each epoch's last step (2, 4) and on the last step (5).
        Assert.Equal("step", straight[0].Keys.First());
        Assert.Equal(new[] { 2.0, 4.0, 5.0 }, straight.Where(r => r.ContainsKey("eval")).Select(r => r["step"]));
    }

    [Fact]
    public void Epoch_batches_cover_every_item_once_per_epoch_and_online_batches_are_always_full()
    {
        var epoch = Enumerable.Range(0, 3).SelectMany(s => SeededOrder.EpochBatch(10, 4, s, 42)).ToList();
        Assert.Equal(Enumerable.Range(0, 10), epoch.Order());
        Assert.Equal(new[] { 4, 4, 2 }, Enumerable.Range(0, 3).Select(s => SeededOrder.EpochBatch(10, 4, s, 42).Count));
        Assert.NotEqual(SeededOrder.EpochBatch(10, 4, 0, 42), SeededOrder.EpochBatch(10, 4, 3, 42)); // a new epoch, a new order

        var items = Enumerable.Range(0, 10).ToList();
        Assert.All(Enumerable.Range(0, 6), s => Assert.Equal(4, SeededOrder.OnlineBatch(items, 4, s, 42).Count));
        Assert.Equal(8, Enumerable.Range(0, 2).SelectMany(s => SeededOrder.OnlineBatch(items, 4, s, 42)).Distinct().Count());
    }

    [Fact]
    public void Cross_field_checks_live_in_the_configs()
    {
        var grpo = Assert.Throws<RlhfException>(() => new GroupRlConfig { GroupSize = 1 }.Validate("grpo"));
        Assert.Contains("group_size", grpo.Message);
        new GroupRlConfig { GroupSize = 1, Estimator = AdvantageEstimator.Remax }.Validate("grpo"); // its baseline is the greedy completion
        Assert.Contains("batch_size", Assert.Throws<RlhfException>(() => new DpoConfig { Loss = PreferenceLossKind.Kto, BatchSize = 1 }.Validate("dpo")).Message);
        Assert.Contains("dpo.lora.r", Assert.Throws<RlhfException>(() => new DpoConfig { Lora = new() { R = 0 } }.Validate("dpo")).Message);
    }

    [Fact]
    public void The_method_table_has_one_row_per_method_with_distinct_commands_and_stages()
    {
        Assert.Equal(Enum.GetValues<AlignmentMethod>().Order(), MethodTable.All.Select(m => m.Method).Order());
        Assert.Equal(MethodTable.All.Count, MethodTable.All.Select(m => m.Command).Distinct().Count());
        Assert.Equal(MethodTable.All.Count, MethodTable.All.Select(m => m.Stage).Distinct().Count());
        // The stage folder of a group-RL method is its config's, so the trainer's progress label and the folder agree.
        Assert.Equal(new GroupRlConfig { Estimator = AdvantageEstimator.ReinforcePp }.StageName, MethodTable.Of(AlignmentMethod.ReinforcePp).Stage);
    }

    [Fact]
    public void A_stage_is_done_only_with_its_checkpoint_unless_it_writes_none()
    {
        string dir = Path.Combine(tmp, "stage");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "done.json"), "{}");
        Assert.False(new StageState(dir).IsDone); // done.json but the checkpoint was removed: train again
        Assert.True(new StageState(dir) { HasCheckpoint = false }.IsDone); // the pipeline's feedback stage
        Directory.CreateDirectory(Path.Combine(dir, "checkpoint"));
        Assert.True(new StageState(dir).IsDone);
    }
}
