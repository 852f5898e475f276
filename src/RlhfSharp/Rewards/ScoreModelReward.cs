using RlhfSharp.Models;
using RlhfSharp.Tokenization;
using static TorchSharp.torch;

namespace RlhfSharp.Rewards;

/// <summary>
/// A trained reward model as an <see cref="IRewardFunction"/>: prompt and completion are concatenated as text,
/// encoded (BOS when the tokenizer has one), ended with EOS as the model was trained (<see cref="RewardModelInput"/>),
/// right-padded and scored in batches at that EOS.
/// </summary>
public sealed class ScoreModelReward(ScoreModel model, ITokenizer tokenizer, int batchSize = 16) : IRewardFunction
{
    /// <inheritdoc/>
    public string Name => "reward_model";

    /// <inheritdoc/>
    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        var device = model.model.Embeddings.weight!.device;
        var result = new List<double>();
        int maxLen = model.Config.MaxPositions;
        for (int start = 0; start < prompts.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            // Keep the end of over-long texts: the reward head reads the last token, the EOS.
            int eos = tokenizer.EosId ?? throw new RlhfException("the reward model's tokenizer has no EOS id: it scores sequences ending in EOS.");
            var chunk = Enumerable.Range(start, Math.Min(batchSize, prompts.Count - start))
                .Select(i => RewardModelInput.EndWithEos(tokenizer.Encode(prompts[i] + completions[i], addBos: tokenizer.BosId is not null), eos, tokenizer.EosIds))
                .Select(ids => ids.Length > maxLen ? ids[^maxLen..] : ids).ToList();
            int width = chunk.Max(c => c.Length);
            var ids = new long[chunk.Count * width];
            var mask = new long[chunk.Count * width];
            for (int i = 0; i < chunk.Count; i++)
                for (int j = 0; j < chunk[i].Length; j++) { ids[i * width + j] = chunk[i][j]; mask[i * width + j] = 1; }
            var rewards = model.Rewards(tensor(ids, [chunk.Count, width], device: device), tensor(mask, [chunk.Count, width], device: device));
            result.AddRange(rewards.to(ScalarType.Float32).cpu().data<float>().ToArray().Select(x => (double)x));
        }
        return result.ToArray();
    }
}
