using System.Diagnostics;
using RlhfSharp.Generation;
using RlhfSharp.Models.T5;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// The encoder-decoder rows of the benchmark (issue 19): a T5-small-shaped random model's training step and its
/// KV-cache sampling, written as <see cref="Workloads"/> writes the decoder-only ones. bench/reference/bench.py's
/// train_t5 / generate_t5 run the same workloads on bench/reference/t5.py, which `t5.py check` pins to transformers'
/// numbers (the fixtures that pin ours in T5ParityTests).
/// </summary>
static class Seq2SeqWorkload
{
    public static bool Handles(string model) => model == "t5small";

    /// <summary>
    /// Source and target of <paramref name="seq"/> random tokens each; the decoder reads the target shifted right and
    /// the loss is on the target tokens (HF's labels), then AdamW. tokens_per_s counts target tokens.
    /// </summary>
    public static void Train(Dictionary<string, object> r, string name, int batch, int seq, int steps, int warmup)
    {
        var config = BenchModels.T5(name);
        var model = new T5ForConditionalGeneration(config);
        model.train();
        var seen = new HashSet<IntPtr>();
        var ps = model.parameters().Where(p => seen.Add(p.Handle)).ToList();
        using var opt = optim.AdamW(ps, lr: 1e-4, weight_decay: 0.01);
        var src = randint(config.VocabSize, [batch, seq]);
        var labels = randint(config.VocabSize, [batch, seq]);
        var mask = ones(batch, seq, int64);
        var decoderInput = model.ShiftRight(labels);
        void Step()
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(src, mask, decoderInput);
            var loss = nn.functional.cross_entropy(logits.view(-1, logits.shape[2]), labels.view(-1));
            opt.zero_grad();
            loss.backward();
            opt.step();
        }
        for (int i = 0; i < warmup; i++) Step();
        var times = new List<double>();
        for (int i = 0; i < steps; i++)
        {
            var sw = Stopwatch.StartNew();
            Step();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        double tokensPerSecond = (double)batch * seq * steps / times.Sum();
        double flops = BenchModels.T5TrainFlopsPerToken(config, seq);
        r["model"] = name; r["params"] = ps.Sum(p => p.numel()); r["batch"] = batch; r["seq"] = seq; r["steps"] = steps;
        r["tokens_per_s"] = tokensPerSecond;
        r["median_step_s"] = times.Order().ElementAt(times.Count / 2);
        r["flops_per_token"] = flops;
        r["achieved_gflops"] = tokensPerSecond * flops / 1e9;
    }

    /// <summary>Encoder prompts of <paramref name="prompt"/> random tokens; <paramref name="newTokens"/> decoder tokens
    /// sampled at temperature 1 by the library's <see cref="Seq2SeqSampler"/> (encoder once, decoder cache).</summary>
    public static void Generate(Dictionary<string, object> r, string name, int batch, int prompt, int newTokens, int warmup)
    {
        var config = BenchModels.T5(name);
        var model = new T5ForConditionalGeneration(config);
        model.eval();
        var ids = randint(3, config.VocabSize, [batch, prompt]);
        var mask = ones(batch, prompt, int64);
        var sampler = new Seq2SeqSampler(model);
        var o = new SamplingOptions { MaxNewTokens = newTokens, Temperature = 1.0, StopAtEos = false, Seed = 1 };
        for (int i = 0; i < warmup; i++)
            using (NewDisposeScope()) sampler.Sample(ids, mask, o with { MaxNewTokens = Math.Min(newTokens, 16) });
        var sw = Stopwatch.StartNew();
        using (NewDisposeScope()) sampler.Sample(ids, mask, o);
        double seconds = sw.Elapsed.TotalSeconds;
        r["model"] = name; r["batch"] = batch; r["prompt"] = prompt; r["new"] = newTokens; r["cache"] = true;
        r["seconds"] = seconds;
        r["tokens_per_s"] = (double)batch * newTokens / seconds;
    }
}
