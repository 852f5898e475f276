using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Checkpoints;

/// <summary>A model that cannot fit is refused before anything is read, with both numbers and what to do.</summary>
public sealed class MemoryBudgetTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-mem-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static readonly TransformerConfig Qwen05B = new()
    {
        // Qwen/Qwen2.5-0.5B config.json
        ModelType = "qwen2", VocabSize = 151936, HiddenSize = 896, IntermediateSize = 4864, NumLayers = 24,
        NumHeads = 14, NumKvHeads = 2, MaxPositions = 32768, RopeTheta = 1000000, TieWordEmbeddings = true, QkvBias = true,
    };

    [Fact]
    public void Weight_bytes_are_parameters_times_the_dtype_size()
    {
        Assert.Equal(494_032_768L, Qwen05B.ParameterCount()); // transformers: sum(p.numel() for p in model.parameters())
        Assert.Equal(494_032_768L * 2, MemoryBudget.WeightBytes(Qwen05B, ScalarType.BFloat16, scoreHead: false));
        // 2 (K and V) × 24 layers × batch 4 × 2 KV heads × 64 dims × 1000 tokens × 4 bytes
        Assert.Equal(2L * 24 * 4 * 2 * 64 * 1000 * 4, MemoryBudget.KvCacheBytes(Qwen05B, ScalarType.Float32, 4, 1000));
    }

    [Fact]
    public void Too_little_memory_is_refused_with_both_numbers_and_advice()
    {
        var e = Assert.Throws<RlhfException>(() => MemoryBudget.Check(Qwen05B, ScalarType.Float32, false, "qwen", (8, 2048), 1_000_000_000, "test"));
        Assert.Contains("1.00 GB is available", e.Message);
        Assert.Contains("2.38 GB", e.Message); // 1.976 GB of weights + 0.403 GB of KV cache
        Assert.Contains("bf16", e.Message);
        Assert.Contains("LoRA", e.Message);
        MemoryBudget.Check(Qwen05B, ScalarType.BFloat16, false, "qwen", null, 1_000_000_000, "test"); // 0.99 GB fits
    }

    [Fact]
    public void A_model_larger_than_the_machine_stops_before_its_weights_are_opened()
    {
        string dir = Path.Combine(tmp, "huge");
        Directory.CreateDirectory(dir);
        var config = new TransformerConfig
        {
            ModelType = "llama", VocabSize = 256000, HiddenSize = 65536, IntermediateSize = 262144, NumLayers = 200,
            NumHeads = 512, NumKvHeads = 64, MaxPositions = 4096,
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJson("LlamaForCausalLM").ToJsonString());
        // No weight file at all: the refusal must come from the memory check, before any weight file is looked at.
        var e = Assert.Throws<RlhfException>(() => HuggingFaceCheckpoint.LoadCausalLM(dir));
        Assert.Contains("needs", e.Message);
        Assert.Contains("available", e.Message);
        Assert.DoesNotContain("model.safetensors", e.Message);
    }

    [Fact]
    public void Cgroup_v2_room_is_the_limit_minus_the_working_set()
    {
        string root = Path.Combine(tmp, "cg2");
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "memory.max"), "1073741824\n");
        File.WriteAllText(Path.Combine(root, "memory.current"), "536870912\n");
        File.WriteAllText(Path.Combine(root, "memory.stat"), "anon 1000\ninactive_file 268435456\nactive_file 5\n");
        Assert.Equal(1073741824L - (536870912L - 268435456L), MemoryBudget.CgroupRoom(root));
        File.WriteAllText(Path.Combine(root, "memory.max"), "max\n");
        Assert.Null(MemoryBudget.CgroupRoom(root));
    }

    [Fact]
    public void MemAvailable_is_read_in_bytes() =>
        Assert.Equal(22_000_000L * 1024, MemoryBudget.MemAvailable("MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:   22000000 kB\n"));
}
