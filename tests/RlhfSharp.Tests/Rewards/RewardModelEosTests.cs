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
        // stories260K was trained with BOS between stories and all but never writes EOS (id 2); for rows that end in
        // EOS the policy's EOS embedding (tied to its output row) is set near that of the frequent " a" (261).
        using (no_grad())
        {
            var embedding = base_.Model.model.Embeddings.weight!;
            embedding[2].copy_(embedding[261] * 0.95);
        }

        var prompts = new List<string> { "Once upon a time", "Lily had a red ball", "The dog was sad", "Tom and Sue went to the park" };
        var promptIds = prompts.Select(base_.EncodePrompt).ToList();
        int eos = tokenizer.EosId!.Value;
        // Sampled with a long budget (rows end in EOS) and greedy with a short one (every row is cut). The pipeline's
        // evaluation samples its first batch with the options' own seed, so it sees the same completions as `rollout`.
        foreach (var options in new[] { new SamplingOptions { Temperature = 1.0, MaxNewTokens = 300, Seed = 11 }, new SamplingOptions { Temperature = 0, MaxNewTokens = 6 } })
        {
            var sampler = new Sampler(base_.Model, tokenizer);
            using var scope = NewDisposeScope();
            var (ids, mask) = sampler.LeftPad(promptIds);
            using var rollout = sampler.Sample(ids, mask, options);
            if (options.Greedy) Assert.All(rollout.FinishReasons, r => Assert.Equal(FinishReason.Length, r));
            else Assert.Contains(FinishReason.Stop, rollout.FinishReasons);

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
            // The pipeline's evaluation.
            var evaluator = new PolicyEvaluator(tokenizer, LexiconReward.VaderCompound(), rm, base_.Model);
            var evaluation = evaluator.Sample("policy", base_.Model, prompts, promptIds, options, CancellationToken.None);
            Assert.Equal(rollout.NewTokens.Select(t => tokenizer.Decode(t)), evaluation.Texts);
            // rlhf eval --reward rm:PATH scores the prompt and completion texts.
            var judge = new ScoreModelReward(rm, tokenizer);
            var eval = judge.Score(prompts, rollout.NewTokens.Select(t => tokenizer.Decode(t)).ToList());

            foreach (var (name, scores) in new[] { ("ppo rollouts", ppo), ("pipeline evaluation", evaluation.Proxy), ("eval --reward rm:", eval) })
                for (int i = 0; i < prompts.Count; i++)
                    Assert.True(Math.Abs(scores[i] - expected[i]) < 1e-4,
                        $"{(options.Greedy ? "cut" : "ended")} rows, {name}, prompt {i}: {scores[i]:F6} vs {expected[i]:F6} for prompt + completion + EOS");

            // Best-of-n samples its own candidates: its proxy of each pick is the score the eval judge gives that text.
            var bestOfN = evaluator.BestOfN(base_.Model, prompts, promptIds, 2, options, CancellationToken.None);
            var judged = judge.Score(prompts, bestOfN.Texts);
            for (int i = 0; i < prompts.Count; i++)
                Assert.True(Math.Abs(bestOfN.Proxy[i] - judged[i]) < 1e-4, $"best-of-n, prompt {i}: {bestOfN.Proxy[i]:F6} vs {judged[i]:F6}");
            if (options.Greedy)
                for (int i = 0; i < prompts.Count; i++) Assert.True(Math.Abs(bestOfN.Proxy[i] - expected[i]) < 1e-4);
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
