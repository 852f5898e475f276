using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Pipeline;
using RlhfSharp.Rewards;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Rewards;

/// <summary>A recipe's <c>"dtype"</c> on an <c>rm</c> reward holds the frozen reward model in that type.</summary>
public sealed class RewardModelDtypeTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-rm-dtype-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    string RewardModel()
    {
        string lm = Path.Combine(tmp, "lm"), rm = Path.Combine(tmp, "rm");
        HuggingFaceCheckpoint.Save(BaseModel.Value.Model, lm, writeExtras: BaseModel.Value.WriteTokenizerFiles);
        manual_seed(3);
        using var model = HuggingFaceCheckpoint.LoadScoreModel(lm, allowNewHead: true);
        HuggingFaceCheckpoint.Save(model, rm);
        return rm;
    }

    [Fact]
    public void A_bf16_reward_model_scores_as_the_bf16_model_does()
    {
        string rmDir = RewardModel();
        var m = BaseModel.Value;
        var sampler = new Sampler(m.Model, m.Tokenizer);
        var (ids, mask) = sampler.LeftPad([m.EncodePrompt("Lily was sad"), m.EncodePrompt("The happy dog")]);
        using var batch = sampler.Sample(ids, mask, new SamplingOptions { MaxNewTokens = 20, Temperature = 1.0, Seed = 5 });
        using var reward = new RolloutReward([new RewardSource { Dtype = "bf16" }], rmDir, m.Model.Config.VocabSize, m.Tokenizer);
        var scores = reward.Score(batch).data<float>().ToArray();

        using var bf16 = HuggingFaceCheckpoint.LoadScoreModel(rmDir, ScalarType.BFloat16);
        using var f32 = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        using var _ = no_grad();
        // Scored on the form the reward model was trained on: every rollout ends in EOS (RewardModelInput).
        var (eosIds, eosMask) = RewardModelInput.OfRollouts(batch, m.Tokenizer.EosId!.Value, m.Tokenizer.EosIds);
        var want = bf16.Rewards(eosIds, eosMask).to(ScalarType.Float32).data<float>().ToArray();
        var full = f32.Rewards(eosIds, eosMask).data<float>().ToArray();
        Assert.Equal(want, scores);
        Assert.NotEqual(full, scores); // so the test would fail if the key were ignored
    }

    [Fact]
    public void An_unknown_dtype_names_the_key()
    {
        string rmDir = RewardModel();
        var m = BaseModel.Value;
        var e = Assert.Throws<RlhfException>(() => new RolloutReward([new RewardSource { Dtype = "int8" }], rmDir, m.Model.Config.VocabSize, m.Tokenizer));
        Assert.Contains("rewards.dtype", e.Message);
    }
}
