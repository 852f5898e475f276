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
    public void A_bf16_reward_model_holds_bf16_weights_and_returns_float32_scores_within_bf16_round_off()
    {
        string rmDir = RewardModel();
        using var bf16 = HuggingFaceCheckpoint.LoadScoreModel(rmDir, ScalarType.BFloat16);
        using var f32 = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        Assert.All(bf16.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        var ids = tensor(new long[,] { { 1, 403, 407, 261, 378, 2 }, { 0, 0, 1, 300, 301, 2 } });
        var mask = tensor(new long[,] { { 1, 1, 1, 1, 1, 1 }, { 0, 0, 1, 1, 1, 1 } });
        using var _ = no_grad();
        var want = f32.Rewards(ids, mask);
        var got = bf16.Rewards(ids, mask);
        Assert.Equal(ScalarType.Float32, got.dtype);
        // bf16 keeps 8 bits of mantissa: each weight and activation is off by up to 2^-9 relative, over 5 layers.
        Assert.True(got.allclose(want, rtol: 0.05, atol: 0.02), $"bf16 {string.Join(", ", got.data<float>().ToArray())} vs float32 {string.Join(", ", want.data<float>().ToArray())}");
        Assert.False(got.eq(want).all().item<bool>(), "the bf16 model rounds, so its scores are not the float32 ones");

        // The centring is applied to the float32 score: 0.1234567 survives, where bf16 would round it to 0.1235.
        bf16.RewardMean = 0.1234567;
        var raw = bf16.Forward(ids, mask, RlhfSharp.Models.Transformer.PositionsFromMask(mask)).select(1, 0).to(ScalarType.Float32);
        Assert.Equal((raw - 0.1234567).data<float>().ToArray(), bf16.Rewards(ids, mask).data<float>().ToArray());
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
