namespace RlhfSharp.Data;

/// <summary>
/// One tokenized KTO example: prompt ids, completion ids (EOS included) and whether the completion is desirable.
/// </summary>
/// <param name="PromptIds">The prompt, BOS first where the model expects it.</param>
/// <param name="CompletionIds">The completion, ending with EOS unless truncated.</param>
/// <param name="Label">True for a desirable completion.</param>
public sealed record LabeledExample(int[] PromptIds, int[] CompletionIds, bool Label)
{
    /// <summary>
    /// Tokenizes <paramref name="labeled"/> with the same length handling as <see cref="PreferenceExample.Create"/>
    /// (TRL truncation_mode "keep_end": the prompt keeps its last tokens, the completion its first).
    /// </summary>
    public static LabeledExample Create(ITokenizer tokenizer, LabeledCompletion labeled, int maxLength, int maxPromptLength, bool addBos)
    {
        var (prompt, completion) = PreferenceExample.CreateSingle(tokenizer, labeled.Prompt, labeled.Completion, maxLength, maxPromptLength, addBos);
        return new LabeledExample(prompt, completion, labeled.Label);
    }
}
