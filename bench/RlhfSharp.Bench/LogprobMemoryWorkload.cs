using System.Diagnostics;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// Peak memory and seconds of the log-probs and their backward through a Qwen2.5-0.5B-shaped LM head (tied, vocab
/// 151,936, hidden 896) at 8 × 512 tokens, the full logits against <see cref="ChunkedLogprobs"/> (issue 12 part 3), in
/// one process. Before each path the kernel's peak-RSS mark is reset (writing 5 to /proc/self/clear_refs, Linux ≥ 4.0), so
/// each path's peak is its own; the peak is reported above the RSS just before the path (weights, hidden states and ids
/// already allocated), which counts what the path adds: its logits and their temporaries, and the head's weight gradient
/// (0.54 GB, the same on both paths). The paths alternate (chunked, full, chunked, full, …) so load on the machine falls on
/// both alike; LibTorch's large buffers are mmap'd and go back to the system when freed.
/// </summary>
static class LogprobMemoryWorkload
{
    public static void Run(Dictionary<string, object> r, int batch, int seq, int vocab, int hidden, int chunk, int reps)
    {
        r["batch"] = batch; r["seq"] = seq; r["vocab"] = vocab; r["hidden"] = hidden; r["chunk"] = chunk; r["reps"] = reps;
        r["logits_gb"] = (double)batch * seq * vocab * 4 / 1e9;
        var peaks = new Dictionary<bool, List<double>> { [true] = [], [false] = [] };
        var seconds = new Dictionary<bool, List<double>> { [true] = [], [false] = [] };
        float[]? chunkedLogprobs = null, fullLogprobs = null;
        Tensor? chunkedWeightGrad = null, chunkedHiddenGrad = null;
        double weightGradDiff = 0, hiddenGradDiff = 0;
        for (int rep = 0; rep < reps; rep++)
            foreach (bool chunked in new[] { true, false })
            {
                using var scope = NewDisposeScope();
                // The same inputs on every pass: a tied head's weight as Qwen2's init (std 0.02), final hidden states of unit scale.
                var gen = new Generator(1);
                var weight = (randn(vocab, hidden, generator: gen) * 0.02).requires_grad_();
                var h = randn(batch, seq, hidden, generator: gen).requires_grad_();
                var ids = randint(0, vocab, [batch, seq], generator: gen, dtype: ScalarType.Int64);
                var head = new LmHeadWeights(weight, null, null);
                GC.Collect();
                double before = ProcessMemory.Mb("VmRSS");
                File.WriteAllText("/proc/self/clear_refs", "5");
                var clock = Stopwatch.StartNew();
                Tensor logprobs;
                if (chunked)
                    logprobs = ChunkedLogprobs.Of(h.narrow(1, 0, seq - 1), ids.narrow(1, 1, seq - 1), head, 1.0, chunk).Logprobs;
                else
                    logprobs = TokenLogprobs.Of(nn.functional.linear(h, weight), ids);
                // The SFT loss: mean negative log-likelihood of the targets.
                (-logprobs.mean()).backward();
                seconds[chunked].Add(clock.Elapsed.TotalSeconds);
                peaks[chunked].Add(ProcessMemory.Mb("VmHWM") - before);
                if (rep > 0) continue;
                var values = logprobs.detach().cpu().data<float>().ToArray();
                if (chunked)
                {
                    chunkedLogprobs = values;
                    chunkedWeightGrad = weight.grad!.clone().DetachFromDisposeScope();
                    chunkedHiddenGrad = h.grad!.clone().DetachFromDisposeScope();
                }
                else
                {
                    fullLogprobs = values;
                    weightGradDiff = (weight.grad! - chunkedWeightGrad!).abs().max().item<float>();
                    hiddenGradDiff = (h.grad! - chunkedHiddenGrad!).abs().max().item<float>();
                    r["weight_grad_max"] = weight.grad!.abs().max().item<float>();
                    r["hidden_grad_max"] = h.grad!.abs().max().item<float>();
                    chunkedWeightGrad!.Dispose(); chunkedHiddenGrad!.Dispose();
                }
            }
        r["peak_mb_full"] = peaks[false].Max();
        r["peak_mb_chunked"] = peaks[true].Max();
        r["peak_ratio"] = peaks[true].Max() / peaks[false].Max();
        r["s_full"] = seconds[false].Min();
        r["s_chunked"] = seconds[true].Min();
        r["s_full_all"] = seconds[false];
        r["s_chunked_all"] = seconds[true];
        r["logprob_max_diff"] = chunkedLogprobs!.Zip(fullLogprobs!, (a, b) => (double)Math.Abs(a - b)).Max();
        r["logprobs_identical"] = chunkedLogprobs!.SequenceEqual(fullLogprobs!);
        r["weight_grad_max_diff"] = weightGradDiff;
        r["hidden_grad_max_diff"] = hiddenGradDiff;
    }
}
