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
