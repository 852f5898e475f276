using System.Text.Json;
using RlhfSharp.Recipes;
using RlhfSharp.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = RlhfSharp.Training.AdamW;

namespace RlhfSharp.Tests.Training;

/// <summary>
/// The project's AdamW (issue 12 §3): float32 moments step exactly as PyTorch's and TorchSharp's AdamW; bfloat16 moments
/// step as torchdistx's AnyPrecisionAdamW, with half the state. Expected weights: fixtures/optimizers/generate_adamw.py
/// (PyTorch 1.13).
/// </summary>
public sealed class AdamWTests : IDisposable
{
    static readonly JsonElement Fixture = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "optimizers", "adamw.json"))).RootElement;
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-adamw-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();
    static double F(string key) => Fixture.GetProperty(key).GetDouble();

    /// <summary>The fixture's two parameters (a 5×7 matrix with weight decay, a bias without) and their AdamW groups.</summary>
    static (Parameter W, Parameter B, List<TorchSharp.Modules.AdamW.ParamGroup> Groups) Parameters()
    {
        var w = new Parameter(tensor(Floats(Fixture.GetProperty("w0"))).reshape(5, 7));
        var b = new Parameter(tensor(Floats(Fixture.GetProperty("b0"))));
        double lr = F("lr"), beta1 = F("beta1"), beta2 = F("beta2"), eps = F("eps");
        return (w, b, [new([w], lr, beta1, beta2, eps, F("weight_decay"), false, false), new([b], lr, beta1, beta2, eps, 0.0, false, false)]);
    }

    static void SetGrads(Parameter w, Parameter b, int step)
    {
        var g = Fixture.GetProperty("grads")[step];
        w.grad = tensor(Floats(g[0])).reshape(5, 7);
        b.grad = tensor(Floats(g[1]));
    }

    [Theory]
    [InlineData("float32", ScalarType.Float32)]
    [InlineData("bfloat16", ScalarType.BFloat16)]
    public void Each_step_gives_pytorchs_weights(string key, ScalarType moments)
    {
        var (w, b, groups) = Parameters();
        using var adam = new AdamW(groups, moments, moments);
        var expected = Fixture.GetProperty(key);
        for (int step = 0; step < expected.GetArrayLength(); step++)
        {
            SetGrads(w, b, step);
            adam.step();
            // Bit for bit: the same float32 operations in the same order (PyTorch 1.13 made the fixture, libtorch 2.10 runs here).
            Assert.Equal(Floats(expected[step][0]), w.data<float>().ToArray());
            Assert.Equal(Floats(expected[step][1]), b.data<float>().ToArray());
        }
    }

    [Fact]
    public void Float32_moments_are_bit_identical_to_torchsharps_adamw_whose_place_this_takes()
    {
        var (w1, b1, groups1) = Parameters();
        var (w2, b2, groups2) = Parameters();
        using var ours = new AdamW(groups1, ScalarType.Float32, ScalarType.Float32);
        using var theirs = optim.AdamW(groups2);
        var generator = new Generator(7);
        for (int step = 0; step < 20; step++)
        {
            // Twenty steps of gradients of every scale, so the bias corrections and the decay run through many values.
            var gw = randn([5, 7], generator: generator) * Math.Pow(10, -step % 7);
            var gb = randn([7], generator: generator);
            (w1.grad, w2.grad, b1.grad, b2.grad) = (gw.clone(), gw.clone(), gb.clone(), gb.clone());
            ours.step();
            theirs.step();
            Assert.True(w1.eq(w2).all().item<bool>() && b1.eq(b2).all().item<bool>(), $"step {step + 1} differs");
        }
    }

    [Fact]
    public void Bfloat16_moments_take_half_the_state_and_the_optimizer_reads_them_from_the_recipe()
    {
        var recipe = Recipe.Load<RlhfSharp.Pipeline.StageRecipe>(null, ["sft.optimizer.momentum_dtype=bfloat16", "sft.optimizer.variance_dtype=bfloat16"]);
        Assert.Equal(MomentDtype.Bfloat16, recipe.Sft.Optimizer.MomentumDtype);
        using var layer = nn.Linear(64, 32);
        using var full = new Optimizer(layer.parameters(), new OptimizerConfig(), totalSteps: 1);
        using var half = new Optimizer(layer.parameters(), recipe.Sft.Optimizer, totalSteps: 1);
        long elements = 64 * 32 + 32;
        Assert.Equal(2 * 4 * elements, full.StateBytes);
        Assert.Equal(2 * 2 * elements, half.StateBytes);
    }

    [Fact]
    public void A_float16_moment_is_refused_with_its_key()
    {
        var e = Assert.Throws<RlhfException>(() => Recipe.Load<RlhfSharp.Pipeline.StageRecipe>(null, ["sft.optimizer.variance_dtype=float16"]));
        Assert.Contains("sft.optimizer.variance_dtype must be one of float32, bfloat16", e.Message);
    }

    [Fact]
    public void Saved_moments_resume_exactly_and_a_resume_with_other_dtypes_is_refused_with_the_file()
    {
        var config = new OptimizerConfig { LearningRate = 0.01, WarmupRatio = 0, MomentumDtype = MomentDtype.Bfloat16, VarianceDtype = MomentDtype.Bfloat16 };
        Assert.Equal(4, config.MomentBytes(4)); // what TrainingMemory counts per trainable parameter
        Assert.Equal(8, new OptimizerConfig().MomentBytes(4));
        using var straight = nn.Linear(8, 4);
        using var stopped = nn.Linear(8, 4);
        stopped.load_state_dict(straight.state_dict());
        var inputs = new[] { randn(2, 8), randn(2, 8) };
        void Backward(Linear layer, int step) { using var _ = NewDisposeScope(); layer.forward(inputs[step]).square().sum().backward(); }
        string path = Path.Combine(tmp, "optimizer.bin");

        using (var whole = new Optimizer(straight.parameters(), config, totalSteps: 10))
            for (int step = 0; step < 2; step++) { Backward(straight, step); whole.Apply(); }
        using (var first = new Optimizer(stopped.parameters(), config, totalSteps: 10))
        {
            Backward(stopped, 0); first.Apply();
            first.Save(path);
        }
        using (var resumed = new Optimizer(stopped.parameters(), config, totalSteps: 10))
        {
            resumed.Load(path);
            Backward(stopped, 1); resumed.Apply();
        }
        Assert.True(straight.weight!.eq(stopped.weight!).all().item<bool>(), "the resumed step differs from the uninterrupted one");

        using var other = new Optimizer(stopped.parameters(), config with { VarianceDtype = null }, totalSteps: 10);
        var e = Assert.Throws<RlhfException>(() => other.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("variance_dtype", e.Message);
    }
}
