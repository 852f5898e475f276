using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Pipeline;
using RlhfSharp.Rewards;
using RlhfSharp.Tests.Cli;
using RlhfSharp.Tokenization;
using RlhfSharp.Tests.Tokenization;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Pipeline;

/// <summary>
/// A decoder-only reward model rewarding a T5 policy (issue #19: "A decoder-only RM may score the prompt plus the output"):
/// the policy's ids are not the reward model's, so the decoded prompt and output are read by the reward model's own
/// tokenizer, as a T5 reward model reads them.
/// </summary>
public sealed class Seq2SeqDecoderRewardTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_decoder_only_reward_model_scores_t5_rollouts_as_its_own_tokenizer_reads_the_decoded_text()
    {
        using var scope = NewDisposeScope();
        // A decoder-only reward model in its HF folder with its tokenizer files: stories260K with a new score head.
        using var stories = PretrainedModel.Load(HfFixture.BuiltInModel);
        string lm = Path.Combine(_dir.Path, "lm"), rmDir = Path.Combine(_dir.Path, "rm");
        HuggingFaceCheckpoint.Save(stories.Model, lm, writeExtras: stories.WriteTokenizerFiles);
        manual_seed(5);
        using (var fresh = HuggingFaceCheckpoint.LoadScoreModel(lm, allowNewHead: true)) HuggingFaceCheckpoint.Save(fresh, rmDir, writeExtras: stories.WriteTokenizerFiles);

        using var t5 = PretrainedSeq2SeqModel.Load(Seq2SeqCliTests.T5Folder(_dir.Path));
        var sampler = new Seq2SeqSampler(t5.Model, t5.Tokenizer);
        var prompts = new[] { "a0 b0 c1", "d2 e0", "f1 a2 b1 c0" }.Select(t5.EncodePrompt).ToList();
        using var batch = sampler.Rollouts(prompts, new SamplingOptions { MaxNewTokens = 6, Seed = 3 });
        RewardSource[] sources = [new() { Source = RewardSourceKind.Rm, Path = rmDir }];

        // Scoring the T5 ids directly is impossible: the vocabularies differ.
        var e = Assert.Throws<RlhfException>(() => new RolloutReward(sources, rmDir, t5.Model.Config.VocabSize, t5.Tokenizer));
        Assert.Contains("vocabulary", e.Message);

        using var reward = new RolloutReward(sources, rmDir, t5.Model.Config.VocabSize, t5.Tokenizer, scoreText: true);
        var got = reward.Score(batch).cpu().data<float>().ToArray();

        using var rm = HuggingFaceCheckpoint.LoadScoreModel(rmDir);
        var rmTokenizer = TokenizerLoader.Load(rmDir);
        int eos = rmTokenizer.EosId!.Value;
        for (int i = 0; i < prompts.Count; i++)
        {
            // What the reward model was trained on: BOS + the text prompt + output, then EOS (RewardModelInput).
            string text = t5.Tokenizer.Decode(prompts[i]) + t5.Tokenizer.Decode(batch.NewTokens[i]);
            int[] ids = [.. rmTokenizer.Encode(text, addBos: true), eos];
            Assert.Equal(rmTokenizer.BosId, ids[0]);
            float want;
            using (no_grad()) want = rm.Forward(tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length]))[0, 0].item<float>();
            Assert.Equal(want, got[i], 4);
        }
        Assert.True(got.Distinct().Count() > 1, "the rows' texts differ, so their scores must");
    }
}
