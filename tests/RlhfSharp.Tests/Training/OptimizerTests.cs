using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Training;

public class OptimizerTests
{
    [Fact]
    public void A_non_finite_gradient_skips_the_step_and_too_many_in_a_row_stop_the_run()
    {
        using var layer = nn.Linear(4, 2);
        var before = layer.weight!.detach().clone();
        using var opt = new Optimizer(layer.parameters(), new OptimizerConfig { LearningRate = 0.1, WarmupRatio = 0, MaxNonFiniteSteps = 3 }, totalSteps: 10);
        var x = ones(1, 4);

        void Backward(double scale) { using var _ = NewDisposeScope(); (layer.forward(x).sum() * scale).backward(); }

        Backward(double.NaN);
        Assert.True(double.IsNaN(opt.Apply()));
        Assert.True(layer.weight!.eq(before).all().item<bool>(), "a NaN step must leave the weights alone");
        Assert.Equal(1, opt.SkippedSteps);

        Backward(1.0);
        Assert.True(double.IsFinite(opt.Apply()));
        Assert.False(layer.weight!.eq(before).all().item<bool>(), "a finite step moves the weights");

        Backward(double.PositiveInfinity); opt.Apply();
        Backward(double.NaN); opt.Apply();
        Backward(double.NaN);
        var e = Assert.Throws<RlhfException>(() => opt.Apply());
        Assert.Contains("3 steps in a row", e.Message);
    }

    [Fact]
    public void An_infinite_loss_skips_the_step_even_when_the_gradient_is_finite_and_resume_keeps_the_count()
    {
        using var layer = nn.Linear(4, 2);
        var before = layer.weight!.detach().clone();
        var config = new OptimizerConfig { LearningRate = 0.1, WarmupRatio = 0, MaxNonFiniteSteps = 2 };
        using var opt = new Optimizer(layer.parameters(), config, totalSteps: 10);
        using (NewDisposeScope()) layer.forward(ones(1, 4)).sum().backward();

        Assert.True(double.IsFinite(opt.Apply(loss: double.PositiveInfinity)), "the gradient itself is finite");
        Assert.True(layer.weight!.eq(before).all().item<bool>(), "an infinite loss must leave the weights alone");
        Assert.Equal(1, opt.SkippedSteps);
        Assert.Equal(1, opt.Step);

        // The in-a-row count survives a save and load: one more bad step after resume stops the run.
        string file = Path.Combine(Path.GetTempPath(), $"opt-{Guid.NewGuid():N}.bin");
        opt.Save(file);
        using var resumed = new Optimizer(layer.parameters(), config, totalSteps: 10);
        resumed.Load(file);
        File.Delete(file);
        Assert.Equal(1, resumed.SkippedSteps);
        var e = Assert.Throws<RlhfException>(() => resumed.Apply(loss: double.NaN));
        Assert.Contains("2 steps in a row", e.Message);
    }

    [Fact]
    public void Weight_decay_applies_to_matrices_only()
    {
        using var layer = nn.Linear(3, 3);
        using (no_grad()) { layer.weight!.fill_(1.0); layer.bias!.fill_(1.0); }
        using var opt = new Optimizer(layer.parameters(), new OptimizerConfig { LearningRate = 0.1, WeightDecay = 0.5, WarmupRatio = 0, Schedule = ScheduleKind.Constant, MaxGradNorm = 0 }, 1);
        layer.zero_grad();
        foreach (var p in layer.parameters()) p.grad = zeros_like(p); // no gradient: only decay can move a weight
        opt.Apply();
        Assert.Equal(1.0f - 0.1f * 0.5f, layer.weight!.data<float>()[0], 5); // AdamW: w ← w − lr·wd·w
        Assert.Equal(1.0f, layer.bias!.data<float>()[0], 5);
    }
}
