using System.Diagnostics;
using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Pipeline;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Bench;

/// <summary>
/// Memory soak (issue #7 item 6): a long PPO run of the library's own <see cref="PpoTrainer"/> on stories260K (policy,
/// frozen reference, a reward model and a separate critic made from the same weights), with the process's RSS read
/// every <c>every</c> steps. A leak of even a few tensors per step shows as steady growth after the warm-up.
/// </summary>
static class PpoSoakWorkload
{
    public static void Run(Dictionary<string, object> r, int steps, int batch, int newTokens, int every)
    {
        using var base_ = PretrainedModel.Load("stories260k");
        var policy = base_.Model;
        using var reference = policy.Clone();
        using var rm = ScoreFrom(policy);
        using var critic = ScoreFrom(policy);
        foreach (var p in rm.parameters()) p.requires_grad = false;
        var prompts = StoryPrompts.Split(64, 1, 1).Train.Select(base_.EncodePrompt).ToList();
        var config = new PpoConfig
        {
            Steps = steps, RolloutBatchSize = batch, MiniBatchSize = Math.Max(1, batch / 2), PpoEpochs = 1, MaxNewTokens = newTokens,
            InitKlCoef = 0.05, PtxCoef = 0, SaveEvery = 0,
            ActorOptimizer = new OptimizerConfig { LearningRate = 1e-4 }, CriticOptimizer = new OptimizerConfig { LearningRate = 1e-4 },
        };
        var rss = new Dictionary<string, double>();
        var managed = new Dictionary<string, double>();
        var sw = Stopwatch.StartNew();
        var trainer = new PpoTrainer(policy, reference, critic, b => rm.Rewards(b.Sequences, b.AttentionMask), new Sampler(policy, base_.Tokenizer), 0, config)
        {
            Progress = new StepReport(p =>
            {
                if (p.Step % every != 0) return;
                rss[p.Step.ToString()] = ProcessMemory.Mb("VmRSS");
                managed[p.Step.ToString()] = GC.GetGCMemoryInfo().TotalCommittedBytes / 1048576.0;
                Console.Error.WriteLine($"step {p.Step}: rss {rss[p.Step.ToString()]:F1} MB, {sw.Elapsed.TotalSeconds:F0} s");
            }),
        };
        trainer.Train(prompts, []);
        r["model"] = "stories260k"; r["steps"] = steps; r["batch"] = batch; r["new_tokens"] = newTokens; r["seconds"] = sw.Elapsed.TotalSeconds;
        r["rss_mb"] = rss;
        r["managed_committed_mb"] = managed;
        // Growth after the warm-up (issue #7: "growth after step 200 below 5%").
        string from = rss.ContainsKey("200") ? "200" : rss.Keys.First();
        r["rss_growth_after_200"] = rss[steps.ToString()] / rss[from] - 1;
    }

    static ScoreModel ScoreFrom(CausalLM policy)
    {
        var m = new ScoreModel(policy.Config);
        using var _ = no_grad();
        var source = policy.model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in m.model.named_parameters()) p.copy_(source[name]);
        return m;
    }


    sealed class StepReport(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
