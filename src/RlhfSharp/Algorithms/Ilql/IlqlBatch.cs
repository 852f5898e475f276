using RlhfSharp.Data;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ilql;

/// <summary>
/// A micro-batch of scored completions laid out as trlX's <c>ILQLBatch</c> (<c>make_experience</c> and
/// <c>ilql_collate_fn</c>, CarperAI/trlx@3340c2f): for a row with P prompt and O completion tokens (L = P + O),
/// <c>actions_ixs</c> = P − 1 … L − 2 (the positions whose hidden state chooses each completion token),
/// <c>states_ixs</c> = those and L − 1, <c>dones</c> = 1 × O then 0, and the reward on the last action. Rows are
/// right-padded; index padding is 0 and is masked out by <c>dones</c>. An encoder-decoder's batch
/// (<see cref="CreateSeq2Seq"/>, trlX's <c>ILQLSeq2SeqBatch</c>) also holds the encoder's prompts; its
/// <see cref="InputIds"/> are then the decoder's tokens.
/// </summary>
/// <param name="EncoderIds">The right-padded encoder prompts (B, P) of an encoder-decoder; null for a decoder-only model.</param>
/// <param name="EncoderMask">Their 0/1 mask (B, P); null for a decoder-only model.</param>
public sealed record IlqlBatch(Tensor InputIds, Tensor AttentionMask, Tensor ActionIxs, Tensor StateIxs, Tensor Actions, Tensor Rewards, Tensor Dones,
    Tensor? EncoderIds = null, Tensor? EncoderMask = null)
{
    /// <param name="rewards">Each example's reward as trained (normalised, <see cref="IlqlLoss.NormalizeRewards"/>).</param>
    public static IlqlBatch Create(IReadOnlyList<ScoredExample> examples, IReadOnlyList<double> rewards, int padId, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        int b = examples.Count;
        int t = examples.Max(e => e.PromptIds.Length + e.CompletionIds.Length);
        int a = examples.Max(e => e.CompletionIds.Length);
        var ids = new long[b * t];
        var attention = new long[b * t];
        var rows = new ActionRows(b, a);
        for (int i = 0; i < b; i++)
        {
            var (prompt, completion) = (examples[i].PromptIds, examples[i].CompletionIds);
            // trlX puts BOS before an output with no prompt: the first action needs a state to be chosen from.
            if (prompt.Length == 0) throw new RlhfException("ILQL: an example has no prompt token; give prompts, or a tokenizer that adds BOS.");
            if (completion.Length == 0) throw new RlhfException("ILQL: an example has an empty completion (cut by max_length?).");
            int p = prompt.Length, o = completion.Length;
            Array.Fill(ids, padId, i * t, t);
            for (int j = 0; j < p + o; j++) { ids[i * t + j] = j < p ? prompt[j] : completion[j - p]; attention[i * t + j] = 1; }
            rows.Fill(i, firstState: p - 1, completion, rewards[i]);
        }
        var (actionIxs, stateIxs, actions, rewardRows, dones) = rows.Tensors(device, dtype);
        return new IlqlBatch(tensor(ids, [b, t], device: device), tensor(attention, [b, t], device: device), actionIxs, stateIxs, actions, rewardRows, dones);
    }

    /// <summary>
    /// An encoder-decoder's batch, as trlX's <c>make_experience_seq2seq</c> lays it out with the decoder start token put
    /// before each completion: the prompt is the encoder's input (right-padded with <paramref name="padId"/>), the decoder
    /// reads <paramref name="decoderStartId"/> then the O completion tokens, <c>actions_ixs</c> = 0 … O − 1 (decoder
    /// position j chooses completion token j), <c>states_ixs</c> = 0 … O, <c>dones</c> = 1 × O then 0, the reward on the
    /// last action. trlX feeds the output's own tokens to the decoder and takes <c>decoder_input_ids[:, 1:]</c> as the
    /// actions, so the output's first token is never chosen by the model although its <c>generate</c> starts from the
    /// start token; with the start token in front, training and decoding agree and every completion token is an action
    /// (as in <see cref="Ppo.Seq2SeqActor"/> and HF's <c>_shift_right</c> of labels).
    /// </summary>
    public static IlqlBatch CreateSeq2Seq(IReadOnlyList<ScoredExample> examples, IReadOnlyList<double> rewards, int padId, int decoderStartId,
        Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        int b = examples.Count;
        int p = examples.Max(e => e.PromptIds.Length);
        int a = examples.Max(e => e.CompletionIds.Length);
        var encoderIds = new long[b * p];
        var encoderMask = new long[b * p];
        var ids = new long[b * (a + 1)];
        var attention = new long[b * (a + 1)];
        var rows = new ActionRows(b, a);
        for (int i = 0; i < b; i++)
        {
            var (prompt, completion) = (examples[i].PromptIds, examples[i].CompletionIds);
            if (prompt.Length == 0) throw new RlhfException("ILQL: an example has an empty prompt; the encoder needs at least one token (T5's prompts end in EOS).");
            if (completion.Length == 0) throw new RlhfException("ILQL: an example has an empty completion (cut by max_length?).");
            Array.Fill(encoderIds, padId, i * p, p);
            for (int j = 0; j < prompt.Length; j++) { encoderIds[i * p + j] = prompt[j]; encoderMask[i * p + j] = 1; }
            int o = completion.Length;
            Array.Fill(ids, padId, i * (a + 1), a + 1);
            ids[i * (a + 1)] = decoderStartId;
            attention[i * (a + 1)] = 1;
            for (int j = 0; j < o; j++) { ids[i * (a + 1) + j + 1] = completion[j]; attention[i * (a + 1) + j + 1] = 1; }
            rows.Fill(i, firstState: 0, completion, rewards[i]);
        }
        var (actionIxs, stateIxs, actions, rewardRows, dones) = rows.Tensors(device, dtype);
        return new IlqlBatch(tensor(ids, [b, a + 1], device: device), tensor(attention, [b, a + 1], device: device), actionIxs, stateIxs, actions, rewardRows, dones,
            tensor(encoderIds, [b, p], device: device), tensor(encoderMask, [b, p], device: device));
    }

    /// <summary>
    /// The action side of a batch, the same for both layouts: which hidden state chooses each completion token
    /// (<c>actions_ixs</c>), those states and the one after the last (<c>states_ixs</c>), the tokens, <c>dones</c> and the
    /// reward on the last action; rows padded to A actions with 0s that <c>dones</c> masks out.
    /// </summary>
    sealed class ActionRows(int b, int a)
    {
        readonly long[] actionIxs = new long[b * a], stateIxs = new long[b * (a + 1)], actions = new long[b * a];
        readonly double[] rewards = new double[b * a], dones = new double[b * (a + 1)];

        /// <summary>Row <paramref name="i"/>: completion token j is chosen by the hidden state at <paramref name="firstState"/> + j.</summary>
        public void Fill(int i, int firstState, int[] completion, double reward)
        {
            int o = completion.Length;
            for (int j = 0; j < o; j++)
            {
                actionIxs[i * a + j] = firstState + j;
                stateIxs[i * (a + 1) + j] = firstState + j;
                actions[i * a + j] = completion[j];
                dones[i * (a + 1) + j] = 1;
            }
            stateIxs[i * (a + 1) + o] = firstState + o;
            rewards[i * a + o - 1] = reward;
        }

        public (Tensor ActionIxs, Tensor StateIxs, Tensor Actions, Tensor Rewards, Tensor Dones) Tensors(Device? device, ScalarType dtype) =>
            (tensor(actionIxs, [b, a], device: device), tensor(stateIxs, [b, a + 1], device: device), tensor(actions, [b, a], device: device),
             tensor(rewards, [b, a], device: device).to(dtype), tensor(dones, [b, a + 1], device: device).to(dtype));
    }

    /// <summary>Rows of (B, T, H) <paramref name="hidden"/> at (B, K) <paramref name="positions"/>: (B, K, H) (trlX <c>batched_index_select</c>).</summary>
    public static Tensor Select(Tensor hidden, Tensor positions) =>
        hidden.gather(1, positions.unsqueeze(-1).expand(positions.shape[0], positions.shape[1], hidden.shape[2]));
}
