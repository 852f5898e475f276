using RlhfSharp.Data;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Algorithms.ProcessReward;

/// <summary>
/// A step-labelled completion as token ids and per-token labels, tokenised as TRL's <c>PRMTrainer.tokenize_row</c>
/// (huggingface/trl@f2cd577 <c>trl/experimental/prm/prm_trainer.py</c>): the prompt and each step encoded alone without
/// special tokens, the separator's ids appended to every step, the step's label on the separator's last token and
/// <see cref="ProcessRewardLoss.Ignore"/> everywhere else, BOS before the prompt when the model takes one, then cut to
/// the maximum length.
/// </summary>
public sealed record ProcessRewardExample(int[] InputIds, float[] Labels)
{
    /// <param name="lastStepOnly">Keep only the last step's label (TRL <c>train_on_last_step_only</c>, training data only).</param>
    public static ProcessRewardExample Create(ITokenizer tokenizer, StepwiseCompletion c, string separator, int maxLength, bool addBos, bool lastStepOnly = false)
    {
        var ids = new List<int>();
        var labels = new List<float>();
        if (addBos && tokenizer.BosId is int bos) { ids.Add(bos); labels.Add(ProcessRewardLoss.Ignore); }
        foreach (var t in tokenizer.Encode(c.Prompt, addBos: false)) { ids.Add(t); labels.Add(ProcessRewardLoss.Ignore); }
        var separatorIds = tokenizer.Encode(separator, addBos: false);
        if (separatorIds.Length == 0) throw new RlhfException($"the step separator {System.Text.Json.JsonSerializer.Serialize(separator)} encodes to no tokens.");
        for (int s = 0; s < c.Steps.Count; s++)
        {
            var step = tokenizer.Encode(c.Steps[s], addBos: false);
            ids.AddRange(step);
            ids.AddRange(separatorIds);
            bool labelled = !lastStepOnly || s == c.Steps.Count - 1;
            for (int k = 0; k < step.Length + separatorIds.Length - 1; k++) labels.Add(ProcessRewardLoss.Ignore);
            labels.Add(labelled ? (float)c.Labels[s] : ProcessRewardLoss.Ignore);
        }
        int n = Math.Min(maxLength, ids.Count);
        return new ProcessRewardExample(ids.Take(n).ToArray(), labels.Take(n).ToArray());
    }
}
