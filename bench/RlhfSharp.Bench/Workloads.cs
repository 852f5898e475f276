using System.Diagnostics;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// Each measurement, written the way a user of the library would: one dispose scope per step, warm-up before
/// timing, no host syncs beyond what the library itself does. Results go into a JSON object.
/// </summary>
static class Workloads
{
    /// <summary>fp32 matmul throughput, best of several rounds (the MFU denominator).</summary>
    public static void Peak(Dictionary<string, object> r, int n, int reps)
    {
        using var scope = NewDisposeScope();
        var a = randn(n, n); var b = randn(n, n);
        for (int i = 0; i < 2; i++) a.matmul(b).Dispose();
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) a.matmul(b).Dispose();
            best = Math.Max(best, 2.0 * n * n * (double)n * reps / sw.Elapsed.TotalSeconds);
        }
        r["n"] = n; r["gflops"] = best / 1e9;
    }

    /// <summary>Read bandwidth: sum over a large fp32 tensor (bytes read / s), and copy (read + write).</summary>
    public static void Bandwidth(Dictionary<string, object> r, int mb, int reps)
    {
        using var scope = NewDisposeScope();
        long count = (long)mb * 1024 * 1024 / 4;
        var x = ones(count); var y = empty(count);
        x.sum().Dispose(); y.copy_(x);
        double read = 0, copy = 0;
        for (int round = 0; round < 3; round++)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) x.sum().Dispose();
            read = Math.Max(read, 4.0 * count * reps / sw.Elapsed.TotalSeconds);
            sw.Restart();
            for (int i = 0; i < reps; i++) y.copy_(x);
            copy = Math.Max(copy, 2 * 4.0 * count * reps / sw.Elapsed.TotalSeconds);
        }
        r["mb"] = mb; r["read_gbs"] = read / 1e9; r["copy_gbs"] = copy / 1e9;
    }

    static (optim.Optimizer Opt, long Params) AdamW(CausalLM model)
    {
        // Tied weights can appear twice in parameters(); the optimizer must see each storage once.
        var seen = new HashSet<IntPtr>();
        var ps = model.parameters().Where(p => seen.Add(p.Handle)).ToList();
        return (optim.AdamW(ps, lr: 1e-4, weight_decay: 0.01), ps.Sum(p => p.numel()));
    }

    static void TrainStep(CausalLM model, optim.Optimizer opt, Tensor input, Tensor target)
    {
        using var scope = NewDisposeScope();
        var logits = model.Forward(input);
        var loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[2]), target.view(-1));
        opt.zero_grad();
        loss.backward();
        opt.step();
    }

    public static void Train(Dictionary<string, object> r, string name, int batch, int seq, int steps, int warmup)
    {
        var model = BenchModels.Create(name);
        model.train();
        var (opt, n) = AdamW(model);
        var input = randint(model.Config.VocabSize, [batch, seq]);
        var target = randint(model.Config.VocabSize, [batch, seq]);
        for (int i = 0; i < warmup; i++) TrainStep(model, opt, input, target);
        var times = new List<double>();
        for (int i = 0; i < steps; i++)
        {
            var sw = Stopwatch.StartNew();
            TrainStep(model, opt, input, target);
            times.Add(sw.Elapsed.TotalSeconds);
        }
        double total = times.Sum();
        double tokensPerSecond = (double)batch * seq * steps / total;
        r["model"] = name; r["params"] = n; r["batch"] = batch; r["seq"] = seq; r["steps"] = steps;
        r["tokens_per_s"] = tokensPerSecond;
        r["median_step_s"] = times.Order().ElementAt(times.Count / 2);
        r["flops_per_token"] = BenchModels.TrainFlopsPerToken(model.Config, seq);
        r["achieved_gflops"] = tokensPerSecond * BenchModels.TrainFlopsPerToken(model.Config, seq) / 1e9;
    }

    /// <summary>VmRSS (MB) over a long training run: steps 50, 100, …, <paramref name="steps"/>.</summary>
    public static void Rss(Dictionary<string, object> r, string name, int batch, int seq, int steps, int gcEvery = 0)
    {
        var model = BenchModels.Create(name);
        model.train();
        // The library's optimizer (AdamW + schedule + clipping), as the trainers use it.
        using var opt = new RlhfSharp.Training.Optimizer(model.parameters(), new RlhfSharp.Training.OptimizerConfig { LearningRate = 1e-4 }, steps);
        var input = randint(model.Config.VocabSize, [batch, seq]);
        var target = randint(model.Config.VocabSize, [batch, seq]);
        var rss = new Dictionary<string, double>();
        var managed = new Dictionary<string, double>();
        var sw = Stopwatch.StartNew();
        for (int i = 1; i <= steps; i++)
        {
            using (NewDisposeScope())
            {
                var logits = model.Forward(input);
                nn.functional.cross_entropy(logits.view(-1, logits.shape[2]), target.view(-1)).backward();
                opt.Apply();
            }
            if (gcEvery > 0 && i % gcEvery == 0) GC.Collect(0);
            if (i % 50 == 0)
            {
                rss[i.ToString()] = ProcessMemory.Mb("VmRSS");
                managed[i.ToString()] = GC.GetGCMemoryInfo().TotalCommittedBytes / 1048576.0;
            }
        }
        r["managed_committed_mb"] = managed;
        r["model"] = name; r["batch"] = batch; r["seq"] = seq; r["steps"] = steps; r["seconds"] = sw.Elapsed.TotalSeconds;
        r["rss_mb"] = rss;
        r["rss_growth"] = rss[steps.ToString()] / rss["50"] - 1;
    }


    /// <summary>
    /// Sampling at temperature 1 from random prompts; with the library's KV-cache <see cref="Sampler"/>, or without
    /// a cache (the whole sequence through the model for every new token, written here).
    /// </summary>
    public static void Generate(Dictionary<string, object> r, string name, int batch, int prompt, int newTokens, bool cache, int warmup)
    {
        var model = BenchModels.Create(name);
        model.eval();
        var ids = randint(3, model.Config.VocabSize, [batch, prompt]);
        var mask = ones(batch, prompt, int64);
        var o = new SamplingOptions { MaxNewTokens = newTokens, Temperature = 1.0, StopAtEos = false, Seed = 1 };
        var sampler = new Sampler(model);
        Action run = cache
            ? () => { using var s = NewDisposeScope(); sampler.Sample(ids, mask, o).Dispose(); }
            : () => NoCache(model, ids, newTokens);
        for (int i = 0; i < warmup; i++)
        {
            var wo = o with { MaxNewTokens = Math.Min(newTokens, 16) };
            if (cache) { using var s = NewDisposeScope(); sampler.Sample(ids, mask, wo).Dispose(); }
            else NoCache(model, ids, Math.Min(newTokens, 16));
        }
        var sw = Stopwatch.StartNew();
        run();
        double seconds = sw.Elapsed.TotalSeconds;
        r["model"] = name; r["batch"] = batch; r["prompt"] = prompt; r["new"] = newTokens; r["cache"] = cache;
        r["seconds"] = seconds;
        r["tokens_per_s"] = (double)batch * newTokens / seconds;
        r["weight_bytes_per_token"] = BenchModels.WeightBytesPerToken(model.Config);
    }

    static void NoCache(CausalLM model, Tensor prompt, int newTokens)
    {
        using var noGrad = no_grad();
        using var generator = new Generator(1, prompt.device);
        var ids = prompt.clone().DetachFromDisposeScope();
        for (int s = 0; s < newTokens; s++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(ids, lastOnly: true).squeeze(1);
            var logprobs = logits.log_softmax(-1);
            var chosen = logits.softmax(-1).multinomial(1, generator: generator);
            var lp = logprobs.gather(1, chosen);
            _ = chosen.cpu().data<long>().ToArray();
            _ = lp.cpu().data<float>().ToArray();
            var next = cat([ids, chosen], 1).DetachFromDisposeScope();
            ids.Dispose();
            ids = next;
        }
        ids.Dispose();
    }

    /// <summary>A frozen model's forward (no grad) in fp32, then the same model cast to bf16: speed and max |Δlogit|.</summary>
    public static void Bf16(Dictionary<string, object> r, string name, int batch, int seq, int iters)
    {
        var model = BenchModels.Create(name);
        model.eval();
        using var _ = no_grad();
        var ids = randint(model.Config.VocabSize, [batch, seq]);
        double Time(out Tensor logits)
        {
            using (NewDisposeScope()) model.Forward(ids);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < iters; i++) { using var s = NewDisposeScope(); model.Forward(ids); }
            double t = sw.Elapsed.TotalSeconds / iters;
            logits = model.Forward(ids).to(float32);
            return t;
        }
        double fp32 = Time(out var reference);
        model.to(ScalarType.BFloat16);
        double bf16 = Time(out var lower);
        var diff = (lower - reference).abs();
        r["model"] = name; r["batch"] = batch; r["seq"] = seq; r["iters"] = iters;
        r["fp32_tokens_per_s"] = batch * seq / fp32;
        r["bf16_tokens_per_s"] = batch * seq / bf16;
        r["speedup"] = fp32 / bf16;
        r["max_abs_logit_diff"] = diff.max().item<float>();
        r["mean_abs_logit_diff"] = diff.mean().item<float>();
        r["max_abs_logit"] = reference.abs().max().item<float>();
        // What RLHF consumes: log-probabilities of tokens (here: of the input tokens shifted by one).
        var tgt = ids.narrow(1, 1, seq - 1).unsqueeze(-1);
        var lpRef = reference.narrow(1, 0, seq - 1).log_softmax(-1).gather(2, tgt);
        var lpLow = lower.narrow(1, 0, seq - 1).log_softmax(-1).gather(2, tgt);
        r["max_abs_logprob_diff"] = (lpLow - lpRef).abs().max().item<float>();
    }
}
