using System.Diagnostics;
using RlhfSharp.Models;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// One SFT or DPO optimizer step of a random-init model with a real model's config (issue 12 part 3): SmolLM2-135M
/// (llama, vocab 49,152, tied) or Qwen2.5-0.5B (qwen2, vocab 151,936, tied, 14 query / 2 KV heads), float32 weights and
/// AdamW, with or without gradient checkpointing (<see cref="LayerCheckpoint"/>) and chunked log-probs. Reports the
/// process's peak RSS (VmHWM: the weights, gradients, moments and the step's activations; a DPO step also holds its
/// float32 reference) and seconds per step after a warm-up step, plus <see cref="TrainingMemory"/>'s estimate for the
/// same step. bench/reference/bench.py <c>real-step</c> runs the same step in PyTorch.
/// </summary>
static class RealStepWorkload
{
    /// <summary>HuggingFaceTB/SmolLM2-135M config.json: 30 layers, hidden 576, 9 query / 3 KV heads, FFN 1536, rope θ 100,000, tied.</summary>
    public static readonly TransformerConfig SmolLM2 = new()
    {
        ModelType = "llama", VocabSize = 49152, HiddenSize = 576, IntermediateSize = 1536, NumLayers = 30, NumHeads = 9, NumKvHeads = 3,
        MaxPositions = 8192, RopeTheta = 100000, NormEps = 1e-5, TieWordEmbeddings = true,
    };

    static TransformerConfig Shape(string name) => name switch
    {
        "smollm2" => SmolLM2,
        "qwen05b" => LoadWorkload.Qwen05B,
        _ => throw new ArgumentException($"unknown model '{name}' (smollm2, qwen05b)"),
    };

    /// <param name="kind">sft: <paramref name="rows"/> sequences, mean NLL of every next token; dpo: <paramref name="rows"/> pairs
    /// (chosen and rejected rows in one forward) against a frozen float32 reference, sigmoid loss, β 0.1.</param>
    /// <param name="moments">AdamW's moment dtype: float32 (PyTorch's AdamW) or bfloat16 (AnyPrecisionAdamW's, <see cref="Training.AdamW"/>).</param>
    /// <param name="layers">When &gt; 0, that many decoder layers instead of the config's: a quick profile of what does not grow with depth (the embedding, the head).</param>
    /// <param name="phases">Reset the peak (/proc/self/clear_refs) before the forward, the backward and the optimizer step of the timed steps, and report each phase's peak (the seconds of each phase are always reported).</param>
    public static void Run(Dictionary<string, object> r, string name, string kind, int rows, int seq, bool checkpointing, int chunk, int steps, string moments = "float32", int layers = 0, bool phases = false)
    {
        var shape = Shape(name);
        if (layers > 0) shape = shape with { NumLayers = layers };
        var phasePeaks = new Dictionary<string, double>();
        var phaseClock = new Stopwatch();
        // Each phase's seconds (the last step's) always; its peak memory with phases=1.
        void Mark(string phase)
        {
            if (phase.Length > 0) phasePeaks[phase + "_s"] = phaseClock.Elapsed.TotalSeconds;
            phaseClock.Restart();
            if (!phases) return;
            if (phase.Length > 0) phasePeaks[phase + "_peak_mb"] = Math.Max(phasePeaks.GetValueOrDefault(phase + "_peak_mb"), ProcessMemory.Mb("VmHWM"));
            File.WriteAllText("/proc/self/clear_refs", "5");
            phasePeaks[(phase.Length > 0 ? "after_" + phase : "before_forward") + "_rss_mb"] = ProcessMemory.Mb("VmRSS");
        }
        var sw = Stopwatch.StartNew();
        manual_seed(0);
        var policy = new CausalLM(shape);
        CausalLM? reference = null;
        if (kind == "dpo") { reference = new CausalLM(shape); reference.eval(); foreach (var p in reference.parameters()) p.requires_grad = false; }
        else if (kind != "sft") throw new ArgumentException($"kind {kind}: sft or dpo");
        if (checkpointing) LayerCheckpoint.Enable(policy, "bench.gradient_checkpointing");
        policy.train();
        r["build_s"] = sw.Elapsed.TotalSeconds;
        var seen = new HashSet<IntPtr>();
        var ps = policy.parameters().Where(p => seen.Add(p.Handle)).ToList();
        var momentDtype = ModelDtype.Parse(moments, "moments");
        using var opt = new Training.AdamW([new(ps, 1e-5, 0.9, 0.999, 1e-8, 0.01, false, false)], momentDtype, momentDtype);
        var optimizerConfig = new OptimizerConfig { MomentumDtype = momentDtype == ScalarType.BFloat16 ? MomentDtype.Bfloat16 : MomentDtype.Float32, VarianceDtype = momentDtype == ScalarType.BFloat16 ? MomentDtype.Bfloat16 : MomentDtype.Float32 };
        int forwardRows = kind == "dpo" ? 2 * rows : rows;
        var ids = randint(shape.VocabSize, [forwardRows, seq]);
        var mask = ones(forwardRows, seq, dtype: ScalarType.Int64);

        double Step()
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            Mark("");
            var next = NextTokenDistributions.Of(policy, ids, mask, chunkSize: chunk);
            Tensor loss;
            // SftTrainer's loss: the weighted sum of the target tokens' log-probs (every token a target here), negated.
            if (kind == "sft") loss = -next.WeightedLogprobSum(ids, full(rows, seq - 1, 1.0 / (rows * (seq - 1)), ScalarType.Float32));
            else
            {
                var logprobs = next.Logprobs(ids); // (rows, seq − 1)
                Tensor refSum;
                // Its own dispose scope: without a graph, the reference's intermediates live only as long as their handles.
                using (no_grad())
                using (var refScope = NewDisposeScope())
                    refSum = NextTokenDistributions.Of(reference!, ids, mask, chunkSize: chunk).Logprobs(ids).sum(1).MoveToOuterDisposeScope();
                var ratio = logprobs.sum(1) - refSum;
                var (chosen, rejected) = (ratio.narrow(0, 0, rows), ratio.narrow(0, rows, rows));
                loss = -nn.functional.logsigmoid(0.1 * (chosen - rejected)).mean();
            }
            opt.zero_grad();
            Mark("forward");
            loss.backward();
            Mark("backward");
            opt.step();
            Mark("optimizer");
            return clock.Elapsed.TotalSeconds;
        }

        double first = Step();
        var times = Enumerable.Range(0, steps).Select(_ => Step()).ToList();
        var estimate = TrainingMemory.Estimate(shape, ScalarType.Float32, null, forwardRows, seq, checkpointing, chunk,
            reference is null ? 0 : Checkpoints.MemoryBudget.WeightBytes(shape, ScalarType.Float32, scoreHead: false), optimizerConfig);
        r["model"] = name; r["kind"] = kind; r["rows"] = rows; r["seq"] = seq; r["ckpt"] = checkpointing ? 1 : 0; r["chunk"] = chunk;
        r["params"] = ps.Sum(p => p.numel());
        r["moments"] = ModelDtype.Name(momentDtype);
        r["optimizer_state_mb"] = opt.StateBytes / 1048576.0;
        r["first_step_s"] = first;
        r["step_s"] = times.Min();
        r["step_s_all"] = times;
        r["peak_rss_mb"] = ProcessMemory.Mb("VmHWM");
        r["estimate_mb"] = estimate.Total / 1048576.0;
        if (layers > 0) r["layers"] = layers;
        foreach (var (phase, mb) in phasePeaks) r[phase] = mb;
    }
}
