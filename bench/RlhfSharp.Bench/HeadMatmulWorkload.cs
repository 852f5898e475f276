using System.Diagnostics;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// Seconds of the three matmuls a chunked LM head makes (<see cref="Training.ChunkedLogprobs"/>), per 2,048 rows, for a
/// Qwen2.5-0.5B-shaped head (151,936 × 896, float32) at several chunk sizes: the logits (<c>linear(h, W)</c>, as
/// <c>CausalLM.Head</c> makes them), the hidden states' gradient (<c>g·W</c>) and the weight's (<c>gᵀ·h</c> added into
/// a gradient). Each is timed twice after one warm-up call; the mean is scaled from the chunk's rows to 2,048. It shows
/// which chunk sizes reach the full-batch matmul's speed on this machine's BLAS (docs/PERFORMANCE.md).
/// </summary>
static class HeadMatmulWorkload
{
    public static void Run(Dictionary<string, object> r, long vocab, long hidden, string chunks)
    {
        r["vocab"] = vocab; r["hidden"] = hidden;
        var gen = new Generator(1);
        var weight = randn(vocab, hidden, generator: gen) * 0.02;
        var weightGrad = zeros(vocab, hidden);
        foreach (long c in chunks.Split(',').Select(long.Parse))
        {
            using var scope = NewDisposeScope();
            var h = randn(c, hidden, generator: gen);
            var g = randn(c, vocab, generator: gen) * 1e-5;
            double Seconds(Action matmul)
            {
                matmul();
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < 2; i++) matmul();
                return clock.Elapsed.TotalSeconds / 2 * (2048.0 / c);
            }
            r[$"logits_s_{c}"] = Seconds(() => { using var s = NewDisposeScope(); nn.functional.linear(h, weight); });
            r[$"hidden_grad_s_{c}"] = Seconds(() => { using var s = NewDisposeScope(); g.mm(weight); });
            r[$"weight_grad_s_{c}"] = Seconds(() => weightGrad.addmm_(g.t(), h));
        }
    }
}
