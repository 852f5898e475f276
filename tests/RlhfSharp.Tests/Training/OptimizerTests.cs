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
