using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>F32, BF16 and F16 files load into any of those dtypes, with the values torch's own cast gives.</summary>
public sealed class CheckpointDtypeTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-dtype-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static Dictionary<string, Tensor> Params(nn.Module m) => m.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    /// <summary>The fixture saved with its weights stored in <paramref name="stored"/> (F32, F16 or BF16).</summary>
    string Stored(string fixture, ScalarType stored)
    {
        var fx = new HfFixture(fixture);
        string dir = Path.Combine(tmp, $"{fixture}-{stored}");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(fx.Dir, "config.json"), Path.Combine(dir, "config.json"));
        var weights = SafeTensors.Load(Path.Combine(fx.Dir, "model.safetensors"));
        SafeTensors.Save(Path.Combine(dir, "model.safetensors"), weights.OrderBy(kv => kv.Key, StringComparer.Ordinal), stored);
        return dir;
    }

    [Theory]
    [InlineData("llama_tiny_gqa", ScalarType.Float32, ScalarType.BFloat16)]
    [InlineData("llama_tiny_gqa", ScalarType.Float32, ScalarType.Float16)]
    [InlineData("gpt2_tiny", ScalarType.Float32, ScalarType.BFloat16)]
    [InlineData("qwen2_tiny_tied", ScalarType.BFloat16, ScalarType.Float32)]
    [InlineData("qwen2_tiny_tied", ScalarType.Float16, ScalarType.BFloat16)]
    [InlineData("gpt2_tiny", ScalarType.Float16, ScalarType.Float32)]
    [InlineData("llama_tiny_gqa", ScalarType.BFloat16, ScalarType.Float16)] // the sixth pair of issue #20's three dtypes
    [InlineData("gpt2_tiny", ScalarType.BFloat16, ScalarType.Float16)]     // through GPT-2's transposed Conv1D weights
    [InlineData("gpt2_tiny", ScalarType.BFloat16, ScalarType.BFloat16)]
    [InlineData("qwen2_tiny_tied", ScalarType.Float16, ScalarType.Float16)]
    public void A_file_loads_into_another_dtype_as_torch_casts_it(string fixture, ScalarType stored, ScalarType target)
    {
        string dir = Stored(fixture, stored);
        // Reference: the file's exact values (widened to float32, which is lossless from F16/BF16), then torch's cast.
        using var reference = HuggingFaceCheckpoint.LoadCausalLM(dir);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir, target);
        var want = Params(reference);
        foreach (var (name, p) in Params(model))
        {
            Assert.Equal(target, p.dtype);
            Assert.True(want[name].to(target).eq(p).all().item<bool>(), name);
        }
        Assert.Equal(target, model.model.get_buffer("inv_freq")!.dtype); // as module.to(dtype) left it before
    }

    [Fact]
    public void A_bf16_load_matches_the_old_float32_load_then_cast_bit_for_bit_in_its_logits()
    {
        var fx = new HfFixture("llama_tiny_gqa");
        using var f32 = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir);
        f32.to(ScalarType.BFloat16);
        using var bf16 = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir, ScalarType.BFloat16);
        using var ids = tensor(new long[] { 1, 5, 9, 33, 2 }, [1, 5]);
        using var _ = no_grad();
        Assert.True(f32.Forward(ids).eq(bf16.Forward(ids)).all().item<bool>());
    }

    [Theory]
    [InlineData("bf16", ScalarType.BFloat16)]
    [InlineData("BFloat16", ScalarType.BFloat16)]
    [InlineData("fp16", ScalarType.Float16)]
    [InlineData("float32", ScalarType.Float32)]
    public void Dtype_names_parse(string name, ScalarType expected) => Assert.Equal(expected, ModelDtype.Parse(name, "--dtype"));

    [Fact]
    public void An_unknown_dtype_name_names_the_option() =>
        Assert.Contains("--dtype", Assert.Throws<RlhfException>(() => ModelDtype.Parse("int8", "--dtype")).Message);

    [Fact]
    public void Saving_in_f16_round_trips_through_the_loader()
    {
        var fx = new HfFixture("llama_tiny_gqa");
        using var a = HuggingFaceCheckpoint.LoadCausalLM(fx.Dir, ScalarType.Float16);
        string path = Path.Combine(tmp, "h.safetensors");
        SafeTensors.Save(path, a.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)), ScalarType.Float16);
        Assert.All(SafeTensorsHeader.Read(path).Entries, e => Assert.Equal("F16", e.Dtype));
        var back = SafeTensors.Load(path);
        foreach (var (name, p) in Params(a)) Assert.True(back[name].to(ScalarType.Float16).eq(p).all().item<bool>(), name);
    }
}
