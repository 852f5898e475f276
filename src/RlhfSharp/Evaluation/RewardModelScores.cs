using RlhfSharp.Algorithms.Reward;
using RlhfSharp.Data;
using RlhfSharp.Models;
using RlhfSharp.Rewards;
using RlhfSharp.Tokenization;
using RlhfSharp.Training;
using static TorchSharp.torch;

namespace RlhfSharp.Evaluation;

/// <summary>
/// A reward model's raw scores of ranked groups, in the form it was trained on (prompt + response + EOS, read at the EOS:
/// <see cref="RewardModelInput"/>). Raw means before the demonstration normalisation (<see cref="ScoreModel.RewardMean"/>,
/// <see cref="ScoreModel.RewardStd"/>): the Bradley–Terry loss was fitted on raw scores, so σ(raw margin) is the RM's own
/// P(a ≻ b) and the calibration table is about that; accuracy is the same either way.
/// </summary>
public static class RewardModelScores
{
    /// <summary>
    /// Every ranking tokenised as <c>rlhf rm</c> tokenises it (<see cref="Pipeline.RunStages.RewardSequence"/>): prompt and
    /// response encoded as one text, BOS when the model's prompts take one, EOS appended, at most <paramref name="maxLength"/> ids.
    /// </summary>
    public static List<RankedGroup> Tokenize(IReadOnlyList<Ranking> rankings, ITokenizer tokenizer, bool addBos, int maxLength)
    {
        int eos = tokenizer.EosId ?? throw new RlhfException("the reward model's tokenizer has no EOS id: it scores sequences ending in EOS.");
        return rankings.Select(r => new RankedGroup(r.Responses.Select(resp => RewardModelInput.EndWithEos(
            SftExample.FromPromptCompletion(tokenizer, r.Prompt, resp, int.MaxValue, addBos, addEos: false).InputIds, eos, tokenizer.EosIds, maxLength)).ToList(), r.Margin)).ToList();
    }

    /// <summary>Whether prompts start with BOS for this tokenizer and architecture (as <see cref="Checkpoints.PretrainedModel.AddsBos"/>).</summary>
    public static bool AddsBos(ITokenizer tokenizer, TransformerConfig config) => tokenizer switch
    {
        HfTokenizer hf => hf.AddBosToken,
        _ => tokenizer.BosId is not null && config.Family == ModelFamily.Llama,
    };

    /// <summary>Raw scores of each group's sequences, in the group's order; <paramref name="batchSize"/> sequences per forward pass.</summary>
    public static List<double[]> Score(IRewardModel model, IReadOnlyList<RankedGroup> groups, int padId, int batchSize = 32, IProgress<int>? progress = null)
    {
        var flat = groups.SelectMany(g => g.Sequences).ToList();
        var scores = new double[flat.Count];
        var device = model.Device;
        bool wasTraining = model.Module.training;
        model.Module.eval();
        using (no_grad())
            for (int start = 0; start < flat.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var chunk = flat.Skip(start).Take(batchSize).ToList();
                var batch = TokenBatch.RightPad(chunk, padId, device);
                var values = model.Scores(batch.Ids, batch.AttentionMask).select(1, 0).to(ScalarType.Float32).cpu().data<float>().ToArray();
                for (int i = 0; i < values.Length; i++) scores[start + i] = values[i];
                progress?.Report(start + chunk.Count);
            }
        if (wasTraining) model.Module.train();
        var result = new List<double[]>();
        int offset = 0;
        foreach (var g in groups) { result.Add(scores[offset..(offset + g.Sequences.Count)]); offset += g.Sequences.Count; }
        return result;
    }
}
