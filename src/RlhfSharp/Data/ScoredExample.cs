namespace RlhfSharp.Data;

/// <summary>One tokenized ILQL example: prompt ids, completion ids (EOS included unless truncated) and its reward.</summary>
public sealed record ScoredExample(int[] PromptIds, int[] CompletionIds, double Reward)
{
    /// <summary>
    /// Tokenizes with the length handling of <see cref="PreferenceExample.Create"/> (the prompt keeps its last
    /// <paramref name="maxPromptLength"/> tokens, the completion its first; EOS ends the completion as trlX's
    /// <c>tokenize_dialogue</c> appends it).
    /// </summary>
    public static ScoredExample Create(ITokenizer tokenizer, ScoredCompletion scored, int maxLength, int maxPromptLength, bool addBos)
    {
        var (prompt, completion) = PreferenceExample.CreateSingle(tokenizer, scored.Prompt, scored.Completion, maxLength, maxPromptLength, addBos);
        return new ScoredExample(prompt, completion, scored.Reward);
    }
}
