using System.Diagnostics;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// Peak memory of one LoRA PPO step (issue #12 §3: 8 prompts × 64 new tokens, then the update) with the critic and the
/// reward model on their own copies of the base, as <c>rlhf ppo</c> holds them by default, against <c>ppo.shared_base</c>
/// (<see cref="SharedBase"/>: every role on the actor's base tensors). The reference is the actor with its adapters off
/// in both. One configuration per process: the peak (VmHWM) only grows.
/// </summary>
static class PpoMemoryWorkload
{
    /// <summary>HuggingFaceTB/SmolLM2-135M config.json: llama, d 576, 30 layers, 9 heads / 3 KV heads, FFN 1536, vocab 49,152, tied.</summary>
    public static readonly TransformerConfig SmolLm2135M = new()
    {
        ModelType = "llama", VocabSize = 49152, HiddenSize = 576, IntermediateSize = 1536, NumLayers = 30,
        NumHeads = 9, NumKvHeads = 3, MaxPositions = 8192, RopeTheta = 100000, NormEps = 1e-5, TieWordEmbeddings = true,
        BosTokenId = 0, EosTokenIds = [0],
    };

    /// <param name="steps">PPO steps (rollout + update) in the run; the seconds reported are the last step's (the first pays
    /// LibTorch's one-time set-up), the peak is the whole run's.</param>
    public static void Run(Dictionary<string, object> r, string name, bool shared, int prompts, int prompt, int newTokens, int chunk, int steps = 1)
    {
        var shape = name switch
        {
            "smollm2-135m" => SmolLm2135M,
            "qwen2.5-0.5b" => LoadWorkload.Qwen05B,
            _ => throw new ArgumentException($"unknown model '{name}' (smollm2-135m, qwen2.5-0.5b)"),
        };
        r["model"] = name; r["shared_base"] = shared; r["prompts"] = prompts; r["prompt"] = prompt; r["new"] = newTokens; r["chunk"] = chunk;
        var policy = new CausalLM(shape);
        var lora = new LoraConfig(); // r 8, α 16, PEFT's default targets (q_proj, v_proj)
        LoraModel.Attach(policy, lora);
        var reference = policy.WithoutAdapters();
        // The reward model: a LoRA reward adapter with its head (frozen); the critic: a trainable copy of it. Without
        // sharing each gets a full copy of the base, as a merged reward model loaded from its folder has.
        ScoreModel Role(bool trainable)
        {
            ScoreModel sm;
            if (shared) sm = SharedBase.OnBase(policy, 1);
            else
            {
                sm = new ScoreModel(shape with { NumLabels = 1 });
                var source = policy.model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
                using (no_grad())
                    foreach (var (n, p) in sm.model.named_parameters()) p.copy_(source[n]);
            }
            LoraModel.Attach(sm, lora);
            if (!trainable) { foreach (var p in sm.parameters()) p.requires_grad = false; sm.eval(); }
            return sm;
        }
        var rm = Role(trainable: false);
        var critic = Role(trainable: true);
        r["weight_mb"] = SharedBase.StorageBytes(policy, reference, rm, critic) / 1048576.0;
        r["rss_models_mb"] = ProcessMemory.Mb("VmRSS");

        var rng = new Random(0);
        var batch = Enumerable.Range(0, prompts).Select(_ => Enumerable.Range(0, prompt).Select(_ => 3 + rng.Next(shape.VocabSize - 3)).ToArray()).ToList();
        var config = new PpoConfig
        {
            Steps = steps, RolloutBatchSize = prompts, MiniBatchSize = prompts, PpoEpochs = 1, MaxNewTokens = newTokens, PtxCoef = 0, SaveEvery = 0,
            Lora = lora, SharedBase = shared, LogprobChunkSize = chunk,
        };
        Tensor Score(SampleBatch b) => rm.Rewards(b.Sequences, b.AttentionMask);
        var log = new MetricsLog(null);
        var clock = Stopwatch.StartNew();
        // No EOS id: every rollout runs the full 64 new tokens.
        new PpoTrainer(policy, reference, critic, Score, new Sampler(policy) { EosIds = [], PadId = 0 }, 0, config) { Metrics = log }.Train(batch, []);
        r["steps"] = steps; r["run_s"] = clock.Elapsed.TotalSeconds;
        var last = log.Rows[^1];
        r["s_per_step"] = last["time_generate"] + last["time_score"] + last["time_train"];
        r["s_per_step_all"] = log.Rows.Select(row => row["time_generate"] + row["time_score"] + row["time_train"]).ToList();
        r["time_generate"] = last["time_generate"]; r["time_experience"] = last["time_score"]; r["time_train"] = last["time_train"];
        r["response_length"] = last["response_length"];
        r["peak_rss_mb"] = ProcessMemory.Mb("VmHWM");
    }
}
