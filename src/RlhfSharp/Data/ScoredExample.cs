using RlhfSharp.Tokenization;

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
        var pair = PreferenceExample.Create(tokenizer, new Preference(scored.Prompt, scored.Completion, scored.Completion), maxLength, maxPromptLength, addBos);
        return new ScoredExample(pair.PromptIds, pair.ChosenIds, scored.Reward);
    }
}
