using System.Diagnostics;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// Where batch-1 decoding time goes (issue #17): one token through GPT-2's body, through the LM head, and each
/// weight shape of the model as a batch-1 product, timed alone, with the GB/s each streams.
/// </summary>
static class DecodeProfileWorkload
{
    public static void Run(Dictionary<string, object> r, string name, int steps)
    {
        var model = BenchModels.Create(name);
        model.eval();
        var c = model.Config;
        using var _ = no_grad();
        using var cache = new KvCache(c, 1, 8 + 3 * steps + 8, float32, CPU);
        using (NewDisposeScope()) model.Forward(randint(c.VocabSize, [1, 8]), cache: cache);
        var id = randint(c.VocabSize, [1, 1]).DetachFromDisposeScope();
        // Process CPU time, not wall time: on a machine shared with other jobs, time spent descheduled is not ours.
        // Read it with threads=1, where CPU time is the time one core works.
        var process = Process.GetCurrentProcess();
        double Time(Action step)
        {
            step();
            process.Refresh();
            var start = process.TotalProcessorTime;
            for (int i = 0; i < steps; i++) { using var s = NewDisposeScope(); step(); }
            process.Refresh();
            return (process.TotalProcessorTime - start).TotalSeconds / steps;
        }
        // And the fastest single repetition in wall time: on a shared machine the repetition that ran undisturbed.
        double Fastest(Action step)
        {
            step();
            double best = double.MaxValue;
            for (int i = 0; i < steps; i++)
            {
                using var s = NewDisposeScope();
                var sw = Stopwatch.StartNew();
                step();
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return best;
        }
        double full = Time(() => model.Forward(id, cache: cache, lastOnly: true));
        double fullFastest = Fastest(() => model.Forward(id, cache: cache, lastOnly: true));
        double body = Time(() => model.model.Forward(id, cache: cache));
        var h = randn(1, 1, c.HiddenSize);
        double head = Time(() => model.Head(h));
        var big = ones(128L * 1024 * 1024);
        double read = Time(() => big.sum());
        r["read_gbs_cpu"] = 4.0 * big.numel() / read / 1e9;
        r["read_gbs_fastest"] = 4.0 * big.numel() / Fastest(() => big.sum()) / 1e9;
        r["fastest_ms_per_token"] = fullFastest * 1e3;
        r["fastest_head_ms"] = Fastest(() => model.Head(randn(1, 1, c.HiddenSize))) * 1e3;
        r["model"] = name; r["steps"] = steps;
        r["ms_per_token"] = full * 1e3; r["body_ms"] = body * 1e3; r["head_ms"] = head * 1e3;
        // Each weight shape as a batch-1 product: nn.functional.linear on (1, 1, in) as the model calls it, and mv.
        var shapes = new Dictionary<string, (long Out, long In)>
        {
            ["qkv"] = (3 * c.HiddenSize, c.HiddenSize), ["o"] = (c.HiddenSize, c.HiddenSize),
            ["up"] = (c.IntermediateSize, c.HiddenSize), ["down"] = (c.HiddenSize, c.IntermediateSize),
            ["head"] = (c.VocabSize, c.HiddenSize),
        };
        foreach (var (label, (o, i)) in shapes)
        {
            var w = randn(o, i); var x = randn(1, 1, i); var bias = randn(o);
            double linear = Time(() => nn.functional.linear(x, w, bias));
            double mv = Time(() => addmv(bias, w, x.view(-1), 1, 1));
            r[$"{label}_linear_gbs"] = 4.0 * o * i / linear / 1e9;
            r[$"{label}_mv_gbs"] = 4.0 * o * i / mv / 1e9;
        }
    }
}
