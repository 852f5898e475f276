using System.Diagnostics;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// Per-rank optimizer memory of ZeRO-1 (issue 12 part 3): a random-init SmolLM2-135M-shaped model (float32) trained a few
/// SFT steps of a tiny batch by <see cref="Optimizer"/> with <c>zero_stage</c> 0 or 1, under <c>mpirun -np N</c> or alone.
/// Each rank prints its own line: the bytes of AdamW moments it holds, its peak RSS (VmHWM) after the model is built and
/// after the steps, so the rise is the gradients, the moments and the (tiny) activations. bench/zero-memory.sh runs the
/// 1- and 2-rank cases.
/// </summary>
static class ZeroMemoryWorkload
{
    public static void Run(Dictionary<string, object> r, int zeroStage, int rows, int seq, int steps)
    {
        manual_seed(0);
        var shape = RealStepWorkload.SmolLM2;
        var model = new CausalLM(shape);
        model.train();
        r["built_peak_rss_mb"] = ProcessMemory.Mb("VmHWM");
        using var optimizer = new Optimizer(model.parameters(), new OptimizerConfig { LearningRate = 1e-5, WarmupRatio = 0, ZeroStage = zeroStage }, steps);
        // Every rank draws the same global batch and trains on its shard of the rows, each row's loss weighted 1/(global rows).
        var ids = randint(shape.VocabSize, [rows * DataParallel.Size, seq]);
        var mine = ids.narrow(0, rows * DataParallel.Rank, rows);
        var mask = ones(rows, seq, dtype: ScalarType.Int64);
        var times = new List<double>();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            var loss = -NextTokenDistributions.Of(model, mine, mask).Logprobs(mine).mean() / DataParallel.Size;
            loss.backward();
            optimizer.Apply();
            times.Add(clock.Elapsed.TotalSeconds);
        }
        r["rank"] = DataParallel.Rank; r["ranks"] = DataParallel.Size; r["zero_stage"] = zeroStage; r["rows_per_rank"] = rows; r["seq"] = seq;
        r["params"] = model.parameters().Sum(p => p.numel());
        r["optimizer_state_mb"] = optimizer.StateBytes / 1048576.0;
        r["step_s"] = times.Skip(1).DefaultIfEmpty(times[0]).Min();
        r["peak_rss_mb"] = ProcessMemory.Mb("VmHWM");
        r["weight_checksum"] = model.parameters().Sum(p => p.detach().to(ScalarType.Float64).abs().sum().item<double>());
    }
}
