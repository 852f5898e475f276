using RlhfSharp.Algorithms.ProcessReward;
using RlhfSharp.Checkpoints;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Algorithms;

/// <summary>The process reward model, a few epochs on the real stories260K model, learns which steps are bad.</summary>
public sealed class ProcessRewardTrainerTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-prm-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Fact]
    public void Prm_learns_to_flag_steps_that_contain_a_marker_token()
    {
        using var lm = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        string dir = Path.Combine(tmp, "sft");
        HuggingFaceCheckpoint.Save(lm, dir);
        manual_seed(1);
        using var prm = HuggingFaceCheckpoint.LoadScoreModel(dir, allowNewHead: true, numLabels: 2);
        const int separator = 13;
        var rng = new Random(3);
        // Steps of 4 tokens then the separator; a step holding token 300 is bad. Labels only on separators, as TRL's.
        ProcessRewardExample Example()
        {
            var ids = new List<int> { 1, 403, 407 };
            var labels = new List<float> { -100, -100, -100 };
            for (int s = 0; s < 3; s++)
            {
                bool bad = rng.Next(2) == 0;
                for (int k = 0; k < 4; k++) { ids.Add(bad && k == rng.Next(4) ? 300 : 270 + rng.Next(20)); labels.Add(-100); }
                bad = ids.Skip(ids.Count - 4).Contains(300);
                ids.Add(separator);
                labels.Add(bad ? 0 : 1);
            }
            return new ProcessRewardExample([.. ids], [.. labels]);
        }
        var train = Enumerable.Range(0, 64).Select(_ => Example()).ToList();
        var eval = Enumerable.Range(0, 16).Select(_ => Example()).ToList();
        var config = new ProcessRewardConfig { Epochs = 4, BatchSize = 8, Optimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant } };
        var trainer = new ProcessRewardTrainer(prm, config, padId: 0);
        var before = trainer.Evaluate(eval);
        var after = trainer.Train(train, eval);
        Assert.True(after["eval_step_accuracy"] > 0.9, $"step accuracy {before["eval_step_accuracy"]:F3} → {after["eval_step_accuracy"]:F3}");
        Assert.True(after["eval_loss"] < before["eval_loss"] * 0.5, $"eval loss {before["eval_loss"]:F3} → {after["eval_loss"]:F3}");
    }

    [Fact]
    public void Prm_gradient_accumulation_is_one_step_of_the_larger_batch()
    {
        // Every example has 3 labelled steps, so the micro-batches' token means weighted by their share of the step
        // equal the big batch's mean over its labelled tokens.
        var rng = new Random(5);
        var examples = Enumerable.Range(0, 8).Select(_ =>
        {
            var ids = new List<int> { 1, 403 };
            var labels = new List<float> { -100, -100 };
            for (int s = 0; s < 3; s++)
            {
                for (int k = 0; k < 3; k++) { ids.Add(270 + rng.Next(40)); labels.Add(-100); }
                ids.Add(13);
                labels.Add(rng.Next(2));
            }
            return new ProcessRewardExample([.. ids], [.. labels]);
        }).ToList();
        (Dictionary<string, double> Row, Tensor Head) OneStep(int batchSize, int accumulation)
        {
            using var lm = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
            string dir = Path.Combine(tmp, $"ga{accumulation}");
            HuggingFaceCheckpoint.Save(lm, dir);
            using var prm = HuggingFaceCheckpoint.LoadScoreModel(dir, allowNewHead: true, numLabels: 2);
            // The new head from a generator of its own: parallel tests draw from torch's global one.
            using (no_grad()) prm.score.weight!.copy_(randn(prm.score.weight!.shape, generator: new Generator(1)) * 0.02);
            var log = new MetricsLog(null);
            var config = new ProcessRewardConfig
            {
                Epochs = 1, BatchSize = batchSize,
                Optimizer = new OptimizerConfig { LearningRate = 1e-3, WarmupRatio = 0, Schedule = ScheduleKind.Constant, GradientAccumulation = accumulation },
            };
            new ProcessRewardTrainer(prm, config, padId: 0) { Metrics = log }.Train(examples, []);
            return (log.Rows.Single(), prm.score.weight!.detach().clone());
        }
        var (big, bigHead) = OneStep(8, 1);
        var (accumulated, accumulatedHead) = OneStep(4, 2);
        Assert.Equal(big["loss"], accumulated["loss"], 5);
        Assert.Equal(big["step_accuracy"], accumulated["step_accuracy"]);
        Assert.Equal(big["grad_norm"], accumulated["grad_norm"], 4);
        Assert.True(bigHead.allclose(accumulatedHead, rtol: 1e-4, atol: 1e-6));
    }

    [Fact]
    public void A_score_head_with_one_label_is_refused()
    {
        using var lm = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        string dir = Path.Combine(tmp, "sft1");
        HuggingFaceCheckpoint.Save(lm, dir);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(dir, allowNewHead: true);
        var e = Assert.Throws<RlhfException>(() => new ProcessRewardTrainer(rm, new ProcessRewardConfig(), 0).Train([new ProcessRewardExample([1, 2], [-100, 1])], []));
        Assert.Contains("2 labels", e.Message);
    }
}
