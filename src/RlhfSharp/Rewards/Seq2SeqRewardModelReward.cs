using RlhfSharp.Models.T5;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Rewards;

/// <summary>
/// A T5 reward model (<see cref="T5ForSequenceClassification"/>) as a text reward: each prompt + completion is read by the
/// reward model's own tokenizer in the form it was trained on (<see cref="RewardModelInput"/>: the text's ids ending in
/// EOS, as <c>rlhf rm</c> on a T5 folder builds them), so it can score any policy's decoded rollouts, T5 or decoder-only.
/// </summary>
public sealed class Seq2SeqRewardModelReward(T5ForSequenceClassification model, ITokenizer tokenizer, int batchSize = 16) : IRewardFunction, IDisposable
{
    /// <inheritdoc/>
    public string Name => "reward_model";

    /// <summary>The reward model and its tokenizer from a folder <c>rlhf rm</c> wrote on a T5 model.</summary>
    public static Seq2SeqRewardModelReward Load(string dir, ScalarType dtype = ScalarType.Float32)
    {
        var model = Checkpoints.T5Checkpoint.LoadSequenceClassification(dir, dtype);
        foreach (var p in model.parameters()) p.requires_grad = false;
        return new Seq2SeqRewardModelReward(model, TokenizerLoader.Load(dir));
    }

    /// <inheritdoc/>
    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        int eos = tokenizer.EosId ?? throw new RlhfException("the reward model's tokenizer has no EOS id: a T5 reward model reads the decoder at EOS.");
        var device = ((IRewardModel)model).Device;
        var result = new List<double>();
        for (int start = 0; start < prompts.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var chunk = Enumerable.Range(start, Math.Min(batchSize, prompts.Count - start))
                .Select(i => RewardModelInput.EndWithEos(tokenizer.Encode(prompts[i] + completions[i]), eos, tokenizer.EosIds)).ToList();
            var (ids, mask) = Seq2SeqLogprobs.RightPad(chunk, tokenizer.PadId ?? model.Config.PadTokenId, device);
            result.AddRange(model.Rewards(ids, mask).to(ScalarType.Float32).cpu().data<float>().ToArray().Select(x => (double)x));
        }
        return result.ToArray();
    }

    public void Dispose() => model.Dispose();
}
