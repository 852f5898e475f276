using System.Diagnostics;
using RlhfSharp.Algorithms.Preference;
using RlhfSharp.Data;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Training;

namespace RlhfSharp.Bench;

/// <summary>
/// Peak memory of DPO training, full fine-tuning against LoRA, on the same model (issue #4 item 5). One configuration
/// per process: the peak (VmHWM) only ever grows, so two configurations in one process would hide the smaller one.
/// </summary>
static class DpoMemoryWorkload
{
    public static void Run(Dictionary<string, object> r, string name, bool lora, int batch, int prompt, int completion, int steps)
    {
        r["model"] = name; r["lora"] = lora; r["batch"] = batch; r["prompt"] = prompt; r["completion"] = completion; r["steps"] = steps;
        var policy = BenchModels.Create(name);
        r["rss_model_mb"] = ProcessMemory.Mb("VmRSS");
        CausalLM reference;
        if (lora)
        {
            LoraModel.Attach(policy, new LoraConfig()); // r 8, α 16, PEFT's default targets (q_proj, v_proj for LLaMA)
            reference = policy.WithoutAdapters();
        }
        else reference = policy.Clone();
        r["trainable_params"] = policy.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        r["weight_mb"] = policy.parameters().Concat(reference.parameters()).DistinctBy(p => p.Handle).Sum(p => p.numel() * p.element_size()) / 1048576.0;

        var rng = new Random(0);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => 3 + rng.Next(policy.Config.VocabSize - 3)).ToArray();
        var pairs = Enumerable.Range(0, batch * steps).Select(_ => new PreferenceExample(Tokens(prompt), Tokens(completion), Tokens(completion))).ToList();
        var config = new DpoConfig
        {
            Epochs = 1, BatchSize = batch, MaxLength = prompt + completion, MaxPromptLength = prompt, SaveEvery = 0,
            // The two runs take the same steps; the learning rate only changes the numbers, not the memory.
            Optimizer = new OptimizerConfig { LearningRate = lora ? 2e-4 : 1e-6, WarmupRatio = 0, Schedule = ScheduleKind.Constant },
        };
        var log = new MetricsLog(null);
        var clock = Stopwatch.StartNew();
        new PreferenceTrainer(policy, reference, config, padId: 0) { Metrics = log }.Train(pairs, []);
        r["s_per_step"] = clock.Elapsed.TotalSeconds / steps;
        r["final_loss"] = log.Rows[^1]["loss"];
        r["peak_rss_mb"] = ProcessMemory.Mb("VmHWM");
    }
}
