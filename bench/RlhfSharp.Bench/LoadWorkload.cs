using System.Diagnostics;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// Loading cost (issue #20): a random model of Qwen2.5-0.5B's exact shape, written once (<c>load-create</c>), then
/// loaded in a fresh process (<c>load</c>) that reports the rise of its peak resident memory (VmHWM) over the file
/// size and the load time; bench/load-memory.sh times a plain read of the same file side by side.
/// </summary>
static class LoadWorkload
{
    /// <summary>Qwen/Qwen2.5-0.5B config.json (494,032,768 parameters, tied embeddings).</summary>
    public static readonly TransformerConfig Qwen05B = new()
    {
        ModelType = "qwen2", VocabSize = 151936, HiddenSize = 896, IntermediateSize = 4864, NumLayers = 24,
        NumHeads = 14, NumKvHeads = 2, MaxPositions = 32768, RopeTheta = 1000000, NormEps = 1e-6, TieWordEmbeddings = true,
        QkvBias = true, BosTokenId = 151643, EosTokenIds = [151643],
    };

    /// <summary>Writes the random model as an HF folder, weights stored in <paramref name="dtype"/>.</summary>
    public static void Create(Dictionary<string, object> r, string dir, ScalarType dtype, TransformerConfig shape)
    {
        var clock = Stopwatch.StartNew();
        using (var model = new CausalLM(shape, dtype))
        {
            using (no_grad())
                foreach (var p in model.parameters()) p.normal_(0, 0.02); // a trained model's scale, so bf16 rounding is realistic
            HuggingFaceCheckpoint.Save(model, dir, bf16: dtype == ScalarType.BFloat16);
        }
        r["dir"] = dir; r["dtype"] = ModelDtype.Name(dtype); r["seconds"] = clock.Elapsed.TotalSeconds;
        r["file_bytes"] = new FileInfo(Path.Combine(dir, HuggingFaceCheckpoint.WeightsFile)).Length;
        r["peak_rss_mb"] = ProcessMemory.Mb("VmHWM");
    }

    /// <summary>Loads the folder into <paramref name="dtype"/>; reports the peak (its rise, and the whole process's) and the seconds.</summary>
    /// <param name="smaps">A folder to copy /proc/self/smaps into before and after the load (bench/smaps-breakdown.py reads them), or null.</param>
    public static void Load(Dictionary<string, object> r, string dir, ScalarType dtype, string? smaps = null)
    {
        // Touch the runtime first (native libraries, a first tensor) so the baseline is the process, not the model.
        using (var warm = ones(8)) warm.sum().item<float>();
        if (smaps is not null) { Directory.CreateDirectory(smaps); File.WriteAllText(Path.Combine(smaps, "before.smaps"), File.ReadAllText("/proc/self/smaps")); }
        double before = ProcessMemory.Mb("VmHWM");
        var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();

        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        using var model = HuggingFaceCheckpoint.LoadCausalLM(dir, dtype);
        double seconds = clock.Elapsed.TotalSeconds;
        r["managed_allocated_mb"] = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / 1048576.0; // what grows the GC's gen0 during the load
        process.Refresh();
        // CPU seconds (user + kernel) too: on a shared machine the wall clock measures the other processes as much as the load.
        r["load_cpu_seconds"] = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
        double after = ProcessMemory.Mb("VmHWM");
        r["rss_after_mb"] = ProcessMemory.Mb("VmRSS");
        if (smaps is not null) File.WriteAllText(Path.Combine(smaps, "after.smaps"), File.ReadAllText("/proc/self/smaps"));
        long fileBytes = Directory.GetFiles(dir, "*.safetensors").Sum(f => new FileInfo(f).Length);
        long weightBytes = model.parameters().Sum(p => p.numel() * p.element_size());
        r["dir"] = dir; r["dtype"] = ModelDtype.Name(dtype); r["load_seconds"] = seconds;
        r["file_mb"] = fileBytes / 1048576.0; r["weights_mb"] = weightBytes / 1048576.0;
        r["peak_before_mb"] = before; r["peak_after_mb"] = after;
        r["peak_rise_over_weights"] = (after - before) * 1048576.0 / weightBytes;
        r["peak_rise_over_file"] = (after - before) * 1048576.0 / fileBytes;
        r["peak_over_file"] = after * 1048576.0 / fileBytes; // the whole process: the runtime's own ~0.1 GB included
    }
}
