using RlhfSharp.Data;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ilql;

/// <summary>
/// A micro-batch of scored completions laid out as trlX's <c>ILQLBatch</c> (<c>make_experience</c> and
/// <c>ilql_collate_fn</c>, CarperAI/trlx@3340c2f): for a row with P prompt and O completion tokens (L = P + O),
/// <c>actions_ixs</c> = P − 1 … L − 2 (the positions whose hidden state chooses each completion token),
/// <c>states_ixs</c> = those and L − 1, <c>dones</c> = 1 × O then 0, and the reward on the last action. Rows are
/// right-padded; index padding is 0 and is masked out by <c>dones</c>.
/// </summary>
public sealed record IlqlBatch(Tensor InputIds, Tensor AttentionMask, Tensor ActionIxs, Tensor StateIxs, Tensor Actions, Tensor Rewards, Tensor Dones)
{
    /// <param name="rewards">Each example's reward as trained (normalised, <see cref="IlqlLoss.NormalizeRewards"/>).</param>
    public static IlqlBatch Create(IReadOnlyList<ScoredExample> examples, IReadOnlyList<double> rewards, int padId, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        int b = examples.Count;
        int t = examples.Max(e => e.PromptIds.Length + e.CompletionIds.Length);
        int a = examples.Max(e => e.CompletionIds.Length);
        var ids = new long[b * t];
        var attention = new long[b * t];
        var actionIxs = new long[b * a];
        var stateIxs = new long[b * (a + 1)];
        var actions = new long[b * a];
        var rewardRows = new double[b * a];
        var dones = new double[b * (a + 1)];
        for (int i = 0; i < b; i++)
        {
            var (prompt, completion) = (examples[i].PromptIds, examples[i].CompletionIds);
            // trlX puts BOS before an output with no prompt: the first action needs a state to be chosen from.
            if (prompt.Length == 0) throw new RlhfException("ILQL: an example has no prompt token; give prompts, or a tokenizer that adds BOS.");
            if (completion.Length == 0) throw new RlhfException("ILQL: an example has an empty completion (cut by max_length?).");
            int p = prompt.Length, o = completion.Length;
            Array.Fill(ids, padId, i * t, t);
            for (int j = 0; j < p + o; j++) { ids[i * t + j] = j < p ? prompt[j] : completion[j - p]; attention[i * t + j] = 1; }
            for (int j = 0; j < o; j++)
            {
                actionIxs[i * a + j] = p - 1 + j;
                stateIxs[i * (a + 1) + j] = p - 1 + j;
                actions[i * a + j] = completion[j];
                dones[i * (a + 1) + j] = 1;
            }
            stateIxs[i * (a + 1) + o] = p + o - 1;
            rewardRows[i * a + o - 1] = rewards[i];
        }
        return new IlqlBatch(
            tensor(ids, [b, t], device: device), tensor(attention, [b, t], device: device),
            tensor(actionIxs, [b, a], device: device), tensor(stateIxs, [b, a + 1], device: device), tensor(actions, [b, a], device: device),
            tensor(rewardRows, [b, a], device: device).to(dtype), tensor(dones, [b, a + 1], device: device).to(dtype));
    }

    /// <summary>Rows of (B, T, H) <paramref name="hidden"/> at (B, K) <paramref name="positions"/>: (B, K, H) (trlX <c>batched_index_select</c>).</summary>
    public static Tensor Select(Tensor hidden, Tensor positions) =>
        hidden.gather(1, positions.unsqueeze(-1).expand(positions.shape[0], positions.shape[1], hidden.shape[2]));
}
