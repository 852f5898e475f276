using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// The memory one AdamW step takes above the weights, gradients and moments it updates (issue 12 §3): a parameter the size
/// of Qwen2.5-0.5B's tied embedding (151,936 × 896, the largest tensor of that model), float32, with a random gradient,
/// stepped by <see cref="Training.AdamW"/> with its moments in <c>moments</c>. VmHWM is reset (/proc/self/clear_refs) just
/// before the step, so <c>step_peak_rise_mb</c> is what the step itself adds on top of what was resident.
/// </summary>
static class AdamWMemoryWorkload
{
    public static void Run(Dictionary<string, object> r, string moments, long rows, long columns)
    {
        var dtype = ModelDtype.Parse(moments, "moments");
        var weight = new TorchSharp.Modules.Parameter(randn(rows, columns));
        weight.grad = randn(rows, columns);
        using var adam = new Training.AdamW([new([weight], 1e-4, 0.9, 0.999, 1e-8, 0.01, false, false)], dtype, dtype);
        adam.step(); // the first step allocates nothing more than later ones; taken so the second is a steady one
        double resident = ProcessMemory.Mb("VmRSS");
        File.WriteAllText("/proc/self/clear_refs", "5");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        adam.step();
        r["moments"] = ModelDtype.Name(dtype);
        r["parameter_mb"] = rows * columns * 4 / 1048576.0;
        r["state_mb"] = adam.StateBytes / 1048576.0;
        r["resident_before_step_mb"] = resident;
        r["step_peak_rise_mb"] = ProcessMemory.Mb("VmHWM") - resident;
        r["step_s"] = clock.Elapsed.TotalSeconds;
    }
}
