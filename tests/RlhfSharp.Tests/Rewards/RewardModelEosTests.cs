using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Models;
using RlhfSharp.Pipeline;
using RlhfSharp.Rewards;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Rewards;

/// <summary>
/// One prompt and completion get one proxy score whichever path scores them, on the sequence form the reward model is
/// trained on: prompt + completion + EOS (OpenRLHF datasets/reward_dataset.py; TRL reward_trainer add_eos).
/// </summary>
public sealed class RewardModelEosTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-rm-eos-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Fact]
    public void Rollout_scoring_pipeline_evaluation_best_of_n_and_eval_reward_rm_agree()
    {
        using var base_ = PretrainedModel.Load("stories260k");
        var tokenizer = base_.Tokenizer;
        string lmDir = Path.Combine(tmp, "lm"), rmDir = Path.Combine(tmp, "rm");
        HuggingFaceCheckpoint.Save(base_.Model, lmDir, writeExtras: base_.WriteTokenizerFiles);
        manual_seed(7); // the new score head
        using (var fresh = HuggingFaceCheckpoint.LoadScoreModel(lmDir, allowNewHead: true))
            HuggingFaceCheckpoint.Save(fresh, rmDir, writeExtras: base_.WriteTokenizerFiles);
        using var rm = HuggingFaceCheckpoint.LoadScoreModel(rmDir);

        var prompts = new List<string> { "Once upon a time", "Lily had a red ball", "The dog was sad", "Tom and Sue went to the park" };
        var promptIds = prompts.Select(base_.EncodePrompt).ToList();
        int eos = tokenizer.EosId!.Value;
        // Greedy, so every path sees the same completions: a long budget (rows end in EOS) and a short one (rows are cut).
        foreach (int budget in new[] { 200, 6 })
        {
            var greedy = new SamplingOptions { Temperature = 0, MaxNewTokens = budget };
            var sampler = new Sampler(base_.Model, tokenizer);
            using var scope = NewDisposeScope();
            var (ids, mask) = sampler.LeftPad(promptIds);
            using var rollout = sampler.Sample(ids, mask, greedy);
            if (budget == 200) Assert.Contains(FinishReason.Stop, rollout.FinishReasons);
            else Assert.All(rollout.FinishReasons, r => Assert.Equal(FinishReason.Length, r));

            // The reference: each prompt + completion + EOS alone, unpadded.
            var expected = promptIds.Select((p, i) =>
            {
                var seq = RewardModelInput.EndWithEos([.. p, .. rollout.NewTokens[i]], eos, tokenizer.EosIds);
                using var _ = no_grad();
                return (double)rm.Rewards(tensor(seq.Select(x => (long)x).ToArray()).unsqueeze(0)).item<float>();
            }).ToArray();

            // PPO's (and every online method's) rollout scoring.
            using var reward = new RolloutReward([], rmDir, base_.Model.Config.VocabSize, tokenizer);
            double[] ppo;
            using (no_grad()) ppo = reward.Score(rollout).data<float>().ToArray().Select(x => (double)x).ToArray();
            // The pipeline's evaluation and best-of-n.
            var evaluator = new PolicyEvaluator(tokenizer, LexiconReward.VaderCompound(), rm, base_.Model);
            var evaluation = evaluator.Sample("policy", base_.Model, prompts, promptIds, greedy, CancellationToken.None);
            var bestOfN = evaluator.BestOfN(base_.Model, prompts, promptIds, 2, greedy, CancellationToken.None);
            // rlhf eval --reward rm:PATH scores the prompt and completion texts.
            var texts = rollout.NewTokens.Select(t => tokenizer.Decode(t)).ToList();
            var eval = new ScoreModelReward(rm, tokenizer).Score(prompts, texts);

            foreach (var (name, scores) in new[] { ("ppo rollouts", ppo), ("pipeline evaluation", evaluation.Proxy), ("best-of-n", bestOfN.Proxy), ("eval --reward rm:", eval) })
                for (int i = 0; i < prompts.Count; i++)
                    Assert.True(Math.Abs(scores[i] - expected[i]) < 1e-4,
                        $"budget {budget}, {name}, prompt {i}: {scores[i]:F6} vs {expected[i]:F6} for prompt + completion + EOS");
        }
    }

    [Fact]
    public void Reward_sequences_end_in_eos_even_when_truncated()
    {
        Assert.Equal([5, 6, 2], RewardModelInput.EndWithEos([5, 6], 2, [2]));
        Assert.Equal([5, 6, 2], RewardModelInput.EndWithEos([5, 6, 2], 2, [2]));
        Assert.Equal([5, 6, 2], RewardModelInput.EndWithEos([5, 6, 7, 8], 2, [2], maxLength: 3)); // OpenRLHF: EOS over the last kept token
    }
}
