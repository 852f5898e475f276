using RlhfSharp.Checkpoints;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>
/// Narrow-dtype loads of llama2.c files and LoRA adapters (issue #20: no float32 model before a bf16 one) give exactly
/// the old float32-then-cast weights; loads still draw the init a seeded run expects.
/// </summary>
[Collection(ProcessWideStateCollection.Name)]
public sealed class NoInitLoadTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-noinit-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf", name);

    static byte[] GeneratorState()
    {
        using var state = torch.random.get_rng_state();
        return state.data<byte>().ToArray();
    }

    static bool Identical(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();




    [Fact]
    public void A_new_score_head_on_a_language_model_starts_as_the_seeded_full_init_made_it()
    {
        string dir = Fixture("llama_tiny_gqa");
        torch.manual_seed(5);
        using var loaded = HuggingFaceCheckpoint.LoadScoreModel(dir, allowNewHead: true);
        torch.manual_seed(5);
        using var built = new ScoreModel(loaded.Config with { NumLabels = 1 }); // the construction a load did before
        Assert.True(Identical(built.score.weight!, loaded.score.weight!));
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void A_llama2c_file_loaded_narrow_equals_the_float32_load_cast_bit_for_bit(ScalarType dtype)
    {
        using var f32 = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        f32.to(dtype); // the old route: the whole model in float32 first, then cast
        using var narrow = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel, dtype);
        var want = f32.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        foreach (var (name, p) in narrow.named_parameters()) Assert.True(Identical(want[name], p), name);
    }

    [Fact]
    public void A_llama2c_float32_load_still_draws_the_init_a_seeded_stories_run_expects()
    {
        // stories260K's seeded runs (pipeline, tests) load it in float32: the generator must move as when the module was
        // built with init, i.e. as a CausalLM of its config built from the same seed.
        torch.manual_seed(9);
        using (var loaded = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel))
        {
            var afterLoad = GeneratorState();
            torch.manual_seed(9);
            using (new CausalLM(loaded.Config)) { }
            Assert.Equal(GeneratorState(), afterLoad);
        }
    }

    /// <summary>A language-model fixture with random adapters saved on it.</summary>
    string Adapter(string fixture, string[] targets)
    {
        string basePath = fixture == "stories260k" ? HfFixture.BuiltInModel : Fixture(fixture); // a llama2.c base too
        using var model = Directory.Exists(basePath) ? HuggingFaceCheckpoint.LoadCausalLM(basePath) : Llama2cCheckpoint.LoadCausalLM(basePath);
        LoraModel.Attach(model, new LoraConfig { R = 4, Alpha = 8, TargetModules = [.. targets] });
        var g = new Generator(21);
        using (no_grad())
            foreach (var (_, p) in PeftAdapter.StateDict(model)) p.copy_(randn(p.shape, generator: g) * 0.2);
        string dir = Path.Combine(tmp, fixture + "-adapter");
        PeftAdapter.Save(model, dir, basePath);
        return dir;
    }

    [Theory]
    [InlineData("llama_tiny_gqa", new[] { "q_proj", "v_proj", "gate_proj", "down_proj" })]
    [InlineData("gpt2_tiny", new[] { "c_attn", "c_proj" })]
    [InlineData("qwen2_tiny_tied", new[] { "all-linear" })]
    [InlineData("stories260k", new[] { "q_proj", "v_proj", "up_proj" })]
    public void An_adapter_loaded_in_bf16_equals_the_float32_merge_cast_afterwards_bit_for_bit(string fixture, string[] targets)
    {
        string dir = Adapter(fixture, targets);
        using var f32 = PeftAdapter.LoadCausalLM(dir);
        f32.to(ScalarType.BFloat16); // the old route: merged in float32, then cast as a whole
        using var bf16 = PeftAdapter.LoadCausalLM(dir, ScalarType.BFloat16);
        var want = f32.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        foreach (var (name, p) in bf16.named_parameters()) Assert.True(Identical(want[name], p), name);
    }

    [Fact]
    public void A_reward_adapter_loaded_in_bf16_equals_the_float32_merge_cast_afterwards()
    {
        string baseDir = Fixture("llama_reward_tiny");
        using (var rm = HuggingFaceCheckpoint.LoadScoreModel(baseDir))
        {
            LoraModel.Attach(rm, new LoraConfig { R = 4, TargetModules = ["q_proj", "v_proj"] });
            var g = new Generator(4);
            using (no_grad())
                foreach (var (_, p) in PeftAdapter.StateDict(rm)) p.copy_(randn(p.shape, generator: g) * 0.2);
            PeftAdapter.Save(rm, Path.Combine(tmp, "rm"), baseDir);
        }
        using var f32 = PeftAdapter.LoadScoreModel(Path.Combine(tmp, "rm"));
        f32.to(ScalarType.BFloat16);
        using var bf16 = PeftAdapter.LoadScoreModel(Path.Combine(tmp, "rm"), ScalarType.BFloat16);
        var want = f32.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        foreach (var (name, p) in bf16.named_parameters()) Assert.True(Identical(want[name], p), name);
    }
}
