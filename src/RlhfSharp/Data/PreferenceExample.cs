using RlhfSharp.Tokenization;

namespace RlhfSharp.Data;

/// <summary>
/// One tokenized preference pair for reward modelling and DPO-style training: the prompt ids once, then each
/// completion's ids (EOS included). The trainer concatenates prompt + chosen and prompt + rejected into one batch
/// (TRL's concatenated forward) and computes log-probabilities on the completion tokens only.
/// </summary>
/// <param name="PromptIds">The prompt, BOS first where the model expects it; the same ids generation would see.</param>
/// <param name="ChosenIds">The preferred completion, ending with EOS unless truncated.</param>
/// <param name="RejectedIds">The other completion, ending with EOS unless truncated.</param>
/// <param name="Margin">The preference's margin, if the data had one.</param>
public sealed record PreferenceExample(int[] PromptIds, int[] ChosenIds, int[] RejectedIds, double? Margin = null)
{
    /// <summary>Prompt then chosen completion.</summary>
    public int[] ChosenInputIds => [.. PromptIds, .. ChosenIds];

    /// <summary>Prompt then rejected completion.</summary>
    public int[] RejectedInputIds => [.. PromptIds, .. RejectedIds];

    /// <summary>
    /// Tokenizes <paramref name="preference"/>. Length handling follows TRL's DPOTrainer (truncation_mode
    /// "keep_end"; defaults max_prompt_length 512, max_length 1024): a prompt longer than
    /// <paramref name="maxPromptLength"/> keeps its last tokens (the question nearest the answer; BOS stays first),
    /// then each completion is cut at the end so prompt + completion fits <paramref name="maxLength"/>.
    /// </summary>
    /// <param name="tokenizer">The policy's tokenizer.</param>
    /// <param name="preference">The pair.</param>
    /// <param name="maxLength">Maximum ids of prompt + completion.</param>
    /// <param name="maxPromptLength">Maximum prompt ids; less than <paramref name="maxLength"/>.</param>
    /// <param name="addBos">Whether the model's prompts start with BOS.</param>
    public static PreferenceExample Create(ITokenizer tokenizer, Preference preference, int maxLength, int maxPromptLength, bool addBos)
    {
        if (maxPromptLength < 1 || maxPromptLength >= maxLength)
            throw new RlhfException($"max prompt length ({maxPromptLength}) must be at least 1 and below max length ({maxLength})");
        var chosen = SftExample.FromPromptCompletion(tokenizer, preference.Prompt, preference.Chosen, int.MaxValue, addBos);
        var rejected = SftExample.FromPromptCompletion(tokenizer, preference.Prompt, preference.Rejected, int.MaxValue, addBos);
        int promptLength = Array.IndexOf(chosen.LossMask, true);
        var prompt = chosen.InputIds[..promptLength];
        // Both encodings start with the prompt encoded alone (TokenAlignment), so the prompts agree.
        if (Array.IndexOf(rejected.LossMask, true) != promptLength || !rejected.InputIds.AsSpan().StartsWith(prompt))
            throw new RlhfException("internal: chosen and rejected tokenized to different prompts");

        if (prompt.Length > maxPromptLength)
        {
            bool bos = addBos && tokenizer.BosId is int b && prompt.Length > 0 && prompt[0] == b;
            prompt = bos ? [prompt[0], .. prompt[^(maxPromptLength - 1)..]] : prompt[^maxPromptLength..];
        }
        int room = maxLength - prompt.Length;
        int[] Cut(int[] completion) => completion.Length <= room ? completion : completion[..room];
        return new PreferenceExample(prompt, Cut(chosen.InputIds[promptLength..]), Cut(rejected.InputIds[promptLength..]), preference.Margin);
    }

    /// <summary>
    /// One completion (KTO's labelled, ILQL's scored) with exactly the pairwise length handling of <see cref="Create"/>:
    /// the pair with the completion on both sides.
    /// </summary>
    public static (int[] PromptIds, int[] CompletionIds) CreateSingle(ITokenizer tokenizer, string prompt, string completion, int maxLength, int maxPromptLength, bool addBos)
    {
        var pair = Create(tokenizer, new Preference(prompt, completion, completion), maxLength, maxPromptLength, addBos);
        return (pair.PromptIds, pair.ChosenIds);
    }
}
