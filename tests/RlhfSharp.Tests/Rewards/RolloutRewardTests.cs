using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Pipeline;
using RlhfSharp.Rewards;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Rewards;

/// <summary>The online stages' reward: a weighted sum of reward models (on token ids) and rule/HTTP rewards (on text).</summary>
public sealed class RolloutRewardTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-rollout-reward-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    /// <summary>An RM folder: stories260K with a fresh, seeded score head, as <c>rlhf rm</c> starts one.</summary>
    string RewardModel()
    {
        string lm = Path.Combine(tmp, "lm"), rm = Path.Combine(tmp, "rm");
        HuggingFaceCheckpoint.Save(BaseModel.Value.Model, lm, writeExtras: BaseModel.Value.WriteTokenizerFiles);
        manual_seed(3);
        using var model = HuggingFaceCheckpoint.LoadScoreModel(lm, allowNewHead: true);
        HuggingFaceCheckpoint.Save(model, rm);
        return rm;
    }

    static SampleBatch Rollouts()
    {
        var m = BaseModel.Value;
        var sampler = new Sampler(m.Model, m.Tokenizer);
        var (ids, mask) = sampler.LeftPad([m.EncodePrompt("Lily was sad"), m.EncodePrompt("The happy dog")]);
        return sampler.Sample(ids, mask, new SamplingOptions { MaxNewTokens = 20, Temperature = 1.0, Seed = 5 });
    }

    [Fact]
    public void Weighted_sum_of_a_reward_model_and_text_rules_equals_the_parts_scored_separately()
    {
        string rmDir = RewardModel();
        var m = BaseModel.Value;
        using var batch = Rollouts();
        using var reward = new RolloutReward(
            [new RewardSource { Weight = 2.0 }, new RewardSource { Source = RewardSourceKind.Vader, Weight = 0.5 },
             new RewardSource { Source = RewardSourceKind.Length, TargetWords = 5, Weight = -1.0 }],
            rmDir, m.Model.Config.VocabSize, m.Tokenizer);
        var total = reward.Score(batch).data<float>().ToArray();

        using var rm = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        // The reward model reads rollouts as it was trained: every row ending in EOS (RewardModelInput).
        var (rmIds, rmMask) = RewardModelInput.OfRollouts(batch, m.Tokenizer.EosId!.Value, m.Tokenizer.EosIds);
        var rmScores = rm.Rewards(rmIds, rmMask).data<float>().ToArray();
        var (prompts, texts) = RunStages.RolloutTexts(batch, m.Tokenizer);
        var vader = LexiconReward.VaderCompound().Score(prompts, texts);
        var length = new LengthReward(5).Score(prompts, texts);
        Assert.Contains(vader, v => v != 0); // the rule term is really in play
        for (int i = 0; i < total.Length; i++)
            Assert.Equal(2.0 * rmScores[i] + 0.5 * vader[i] - length[i], total[i], 4);
        Assert.False(reward.IsRewardModelOnly);
    }

    [Fact]
    public void Rule_rewards_need_no_reward_model_and_bad_sources_name_the_problem()
    {
        var m = BaseModel.Value;
        using var batch = Rollouts();
        using (var rules = new RolloutReward([new RewardSource { Source = RewardSourceKind.Keyword, Pattern = "dog|sad" }], Path.Combine(tmp, "none"), m.Model.Config.VocabSize, m.Tokenizer))
        {
            var (prompts, texts) = RunStages.RolloutTexts(batch, m.Tokenizer);
            Assert.Equal(new KeywordReward("dog|sad").Score(prompts, texts).Select(x => (float)x), rules.Score(batch).data<float>().ToArray());
        }
        Assert.Contains("rlhf rm", Assert.Throws<RlhfException>(() => new RolloutReward([], Path.Combine(tmp, "none"), 512, m.Tokenizer)).Message);
        Assert.Contains("pattern", Assert.Throws<RlhfException>(() => new RolloutReward([new RewardSource { Source = RewardSourceKind.Keyword }], "", 512, m.Tokenizer)).Message);
        Assert.Contains("url", Assert.Throws<RlhfException>(() => new RolloutReward([new RewardSource { Source = RewardSourceKind.Http, Url = "localhost" }], "", 512, m.Tokenizer)).Message);
        Assert.Contains("NO_SUCH_TOKEN_VAR", Assert.Throws<RlhfException>(() => new RolloutReward(
            [new RewardSource { Source = RewardSourceKind.Http, Url = "http://127.0.0.1:9/score", TokenEnv = "NO_SUCH_TOKEN_VAR" }], "", 512, m.Tokenizer)).Message);
        string rmDir = RewardModel();
        Assert.Contains("vocabulary", Assert.Throws<RlhfException>(() => new RolloutReward([], rmDir, 999, m.Tokenizer)).Message);
    }
}
