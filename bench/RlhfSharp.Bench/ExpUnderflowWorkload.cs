using System.Diagnostics;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// Why <see cref="Training.TokenLogprobs"/> takes probabilities from <c>softmax</c> and never from <c>exp</c>: LibTorch's
/// <c>exp</c> (and <c>logsumexp</c>, which calls it) is oneMKL's <c>vsExp</c> (ATen's vml.h), which takes a slow path for
/// every input whose result is subnormal or 0 (below −87.3), while <c>softmax</c> and <c>log_softmax</c> are ATen's own
/// vectorised kernels. On (rows, vocab) float32 logits drawn from N(0, σ) for each σ, times the old and new forms of the
/// log-prob's forward (<c>logsumexp</c> against <c>log_softmax</c>) and of its backward's probabilities
/// (<c>exp(x − lse)</c> against <c>softmax</c>), plus the share of entries below −87.3 under their logsumexp.
/// </summary>
static class ExpUnderflowWorkload
{
    public static void Run(Dictionary<string, object> r, int rows, int vocab, string sigmas, int reps)
    {
        manual_seed(0);
        using var z = randn(rows, vocab);
        foreach (var sigma in sigmas.Split(',').Select(double.Parse))
        {
            using var scope = NewDisposeScope();
            var x = z * sigma;
            var lse = x.logsumexp(-1, keepdim: true);
            r[$"sigma_{sigma}_share_below_minus_87"] = (x - lse).lt(-87.3).to(ScalarType.Float32).mean().item<float>();
            double Time(Func<Tensor> f)
            {
                f().Dispose(); // warm-up
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < reps; i++) f().Dispose();
                return clock.Elapsed.TotalSeconds / reps;
            }
            r[$"sigma_{sigma}_logsumexp_s"] = Time(() => x.logsumexp(-1));
            r[$"sigma_{sigma}_log_softmax_s"] = Time(() => x.log_softmax(-1));
            r[$"sigma_{sigma}_exp_x_minus_lse_s"] = Time(() => (x - lse).exp_());
            r[$"sigma_{sigma}_softmax_s"] = Time(() => x.softmax(-1));
        }
        r["rows"] = rows; r["vocab"] = vocab; r["reps"] = reps;
    }
}
