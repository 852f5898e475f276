using System.Security.Cryptography;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>
/// Issue #20, load time: a weight the file holds whole in the model's dtype becomes a view of the privately mapped file
/// (<see cref="SafeTensors.TryShare"/>), and every loaded value is checked for NaN/±Inf by its bits
/// (<see cref="FiniteValues"/>). What that could break: the file changed by training, a NaN let through, values that differ.
/// </summary>
public sealed class MappedLoadTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-mapped-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf", name);

    string Copy(string fixture)
    {
        string dir = Path.Combine(tmp, fixture);
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(Fixture(fixture))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    [SkippableFact]
    public void Training_writes_to_mapped_weights_never_reach_the_file_and_a_second_load_reads_the_originals()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "reads /proc/self/maps to see the mapping");
        string dir = Copy("qwen2_tiny_tied"), file = Path.Combine(dir, "model.safetensors"), before = Sha(file);
        Dictionary<string, Tensor> original;
        using (var model = HuggingFaceCheckpoint.LoadCausalLM(dir))
        {
            // The file is mapped (the tied embedding, the norms and o_proj/down_proj are held whole in float32).
            Assert.Contains(File.ReadLines("/proc/self/maps"), l => l.EndsWith(file));
            // Whatever wrappers the sharing made are gone: none of them may have freed a parameter's native tensor.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            original = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
            using (no_grad()) foreach (var p in model.parameters()) p.add_(1.0f);
            Assert.All(model.named_parameters(), p => Assert.True(p.parameter.allclose(original[p.name] + 1.0f)));
        }
        Assert.Equal(before, Sha(file));
        using var again = HuggingFaceCheckpoint.LoadCausalLM(dir);
        Assert.All(again.named_parameters(), p => Assert.True(p.parameter.eq(original[p.name]).all().item<bool>(), p.name));
        foreach (var t in original.Values) t.Dispose();
    }

    [Theory]
    [InlineData("model.embed_tokens.weight")] // held whole: mapped
    [InlineData("model.layers.0.self_attn.k_proj.weight")] // fused into our q/k/v rows: copied
    public void A_NaN_in_a_mapped_or_a_copied_weight_is_refused_naming_the_file_and_the_tensor(string key)
    {
        string dir = Copy("qwen2_tiny_tied"), file = Path.Combine(dir, "model.safetensors");
        var weights = SafeTensors.Load(file);
        weights[key].view(-1)[3] = tensor(float.NaN);
        SafeTensors.Save(file, weights.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        var e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(dir));
        Assert.Contains($"'{key}'", e.Message);
        Assert.Contains("model.safetensors", e.Message);
        foreach (var t in weights.Values) t.Dispose();
    }

    [Fact]
    public void A_weight_larger_than_one_span_is_tested_piece_by_piece()
    {
        // A span holds at most int.MaxValue bytes; a 7B model's float32 embedding is larger. One float past the 1 GiB
        // piece, with the NaN in the second piece (zeros are untouched pages, so this costs little memory).
        long n = FiniteValues.Piece / 4 + 1;
        using var values = zeros(n, float32);
        Assert.True(FiniteValues.All(values));
        values[n - 1] = tensor(float.NaN);
        Assert.False(FiniteValues.All(values));
    }

    public static TheoryData<ScalarType> FloatTypes => new() { ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16, ScalarType.Float64 };

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void The_bit_test_finds_every_NaN_and_infinity_that_isfinite_finds(ScalarType dtype)
    {
        // Against LibTorch's isfinite: lengths around the vector width (body and tail), one special value at each place,
        // and finite extremes (the largest value, subnormals, -0) that must pass.
        using var scope = NewDisposeScope();
        double max = dtype switch { ScalarType.BFloat16 => 3.38e38, ScalarType.Float16 => 65504, ScalarType.Float32 => float.MaxValue, _ => double.MaxValue };
        foreach (int n in new[] { 1, 7, 15, 16, 17, 33, 64, 100 })
        {
            var values = randn(n, dtype: float64).to(dtype);
            values[0] = tensor(max).to(dtype);
            if (n > 1) values[1] = tensor(-0.0).to(dtype);
            if (n > 2) values[2] = tensor(1e-40).to(dtype); // subnormal in float32; 0 or subnormal in the narrower types
            Assert.True(FiniteValues.All(values), $"{dtype} n={n}: finite values refused");
            Assert.True(values.isfinite().all().item<bool>());
            foreach (double special in new[] { double.NaN, double.PositiveInfinity, double.NegativeInfinity })
                for (int at = 0; at < n; at += Math.Max(1, n / 5))
                {
                    var broken = values.clone();
                    broken[at] = tensor(special).to(dtype);
                    Assert.False(broken.isfinite().all().item<bool>());
                    Assert.False(FiniteValues.All(broken), $"{dtype} n={n}: {special} at {at} not found");
                }
        }
    }
}
