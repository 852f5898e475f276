using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Rewards;

/// <summary>A reward model's normalisation reads and applies OpenRLHF's config keys as OpenRLHF does.</summary>
public sealed class RewardNormalisationTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-rmnorm-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    /// <summary>
    /// A config.json as OpenRLHF's train_rm writes it (<c>normalize_reward</c>, <c>mean</c>, <c>std</c>): the reward is
    /// (r − mean) / std, as in OpenRLHF models/model.py (<c>reward = (reward - self.mean) / self.std</c>).
    /// </summary>
    [Fact]
    public void Reward_is_centred_and_divided_by_std_from_openrlhf_config_keys()
    {
        using var lm = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel);
        HuggingFaceCheckpoint.Save(lm, tmp);
        manual_seed(5);
        using (var fresh = HuggingFaceCheckpoint.LoadScoreModel(tmp, allowNewHead: true)) HuggingFaceCheckpoint.Save(fresh, tmp);
        string configFile = Path.Combine(tmp, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configFile))!.AsObject();
        config["normalize_reward"] = true;
        config["mean"] = 0.75;
        config["std"] = 2.5;
        File.WriteAllText(configFile, config.ToJsonString());

        using var rm = HuggingFaceCheckpoint.LoadScoreModel(tmp);
        using var scope = NewDisposeScope();
        var batch = TokenBatch.RightPad([[1, 403, 407, 261, 378, 2], [1, 403, 300, 2]], 0, CPU);
        var raw = rm.Forward(batch.Ids, batch.AttentionMask).select(1, 0);
        var rewards = rm.Rewards(batch.Ids, batch.AttentionMask);
        Assert.True(rewards.allclose((raw - 0.75) / 2.5, rtol: 1e-6, atol: 1e-7),
            $"raw {string.Join(", ", raw.data<float>().ToArray())} → {string.Join(", ", rewards.data<float>().ToArray())}");
    }
}
