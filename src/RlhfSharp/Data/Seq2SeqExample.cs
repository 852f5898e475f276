namespace RlhfSharp.Data;

/// <summary>
/// One encoder-decoder training example: the prompt goes to the encoder, the target is what the decoder must produce
/// (with its EOS), as T5's tokenizer gives <c>input_ids</c> and <c>labels</c>.
/// </summary>
public sealed record Seq2SeqExample(int[] PromptIds, int[] TargetIds)
{
    /// <summary>Cuts prompt and target to <paramref name="maxLength"/> tokens each (HF truncation of inputs and labels).</summary>
    public Seq2SeqExample Truncate(int maxLength) =>
        PromptIds.Length <= maxLength && TargetIds.Length <= maxLength ? this : new(PromptIds[..Math.Min(maxLength, PromptIds.Length)], TargetIds[..Math.Min(maxLength, TargetIds.Length)]);
}
