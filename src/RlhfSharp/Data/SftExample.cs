using RlhfSharp.Tokenization;

namespace RlhfSharp.Data;

/// <summary>
/// One tokenized SFT example: the ids and a loss mask that is true only where the model is taught (the completion,
/// or the assistant turns). Tensors are built later, by the trainer's collator.
/// </summary>
/// <param name="InputIds">Token ids, BOS first where the model expects it.</param>
/// <param name="LossMask">Per token, whether its prediction is trained (same length as <paramref name="InputIds"/>).</param>
public sealed record SftExample(int[] InputIds, bool[] LossMask)
{
    /// <summary>How many tokens carry loss; 0 when truncation cut the whole completion away (skip such examples).</summary>
    public int LossTokenCount => LossMask.Count(m => m);

    /// <summary>The first <paramref name="maxLength"/> tokens (the tail is cut, as at tokenization).</summary>
    public SftExample Truncate(int maxLength) => InputIds.Length <= maxLength ? this : new(InputIds[..maxLength], LossMask[..maxLength]);

    /// <summary>
    /// Tokenizes a <see cref="Demonstration"/>: prompt/completion rows with <see cref="FromPromptCompletion"/>,
    /// conversations with <see cref="FromMessages"/> (then <paramref name="template"/> is required).
    /// </summary>
    public static SftExample Create(ITokenizer tokenizer, Demonstration demonstration, int maxLength, bool addBos, ChatTemplate? template = null) =>
        demonstration.Messages is { } messages
            ? FromMessages(tokenizer, template ?? throw new RlhfException("a messages dataset needs a chat template (--chat-template NAME)"), messages, maxLength, addBos)
            : FromPromptCompletion(tokenizer, demonstration.Prompt, demonstration.Completion, maxLength, addBos);

    /// <summary>
    /// prompt + completion + EOS, the mask true on the completion tokens and EOS (so the model learns to stop).
    /// Special-token strings in the data stay plain text. Longer than <paramref name="maxLength"/>: the tail is cut,
    /// keeping the prompt's head and as much of the completion as fits (TRL's SFT truncation); the EOS goes first.
    /// </summary>
    /// <param name="tokenizer">The policy's tokenizer.</param>
    /// <param name="prompt">Prompt text; may be empty (then all tokens but BOS carry loss).</param>
    /// <param name="completion">The demonstration.</param>
    /// <param name="maxLength">Maximum ids per example.</param>
    /// <param name="addBos">Whether the model's prompts start with BOS (<c>PretrainedModel.AddsBos</c>).</param>
    /// <param name="addEos">Append EOS after the completion (default true).</param>
    public static SftExample FromPromptCompletion(ITokenizer tokenizer, string prompt, string completion, int maxLength, bool addBos, bool addEos = true)
    {
        var (ids, at) = TokenAlignment.Encode(tokenizer, prompt + completion, addBos, specialTokens: false, null, [prompt.Length]);
        var all = new List<int>(ids);
        if (addEos) all.Add(tokenizer.EosId ?? throw new RlhfException("the tokenizer has no EOS id to end a completion with"));
        var mask = new bool[all.Count];
        for (int i = at[0]; i < mask.Length; i++) mask[i] = true;
        return Truncate(all.ToArray(), mask, maxLength);
    }

    /// <summary>
    /// A conversation rendered by <paramref name="template"/>; the mask is true exactly on the tokens of each
    /// assistant turn's content and end marker (<see cref="RenderedChat.AssistantSpans"/>, as HF's assistant mask).
    /// When the text ends with an assistant turn that has no end marker (the "plain" and "hh" templates), EOS is
    /// appended and trained. BOS is added as <paramref name="addBos"/> says, unless the template writes its own.
    /// Truncation as in <see cref="FromPromptCompletion"/>: the tail is cut.
    /// </summary>
    public static SftExample FromMessages(ITokenizer tokenizer, ChatTemplate template, IReadOnlyList<ChatMessage> messages, int maxLength, bool addBos)
    {
        var rendered = template.RenderWithAssistantSpans(messages, addGenerationPrompt: false);
        string text = rendered.Text;
        bool bos = addBos && !text.StartsWith("<s>", StringComparison.Ordinal) && !text.StartsWith("<|begin_of_text|>", StringComparison.Ordinal);
        var boundaries = rendered.AssistantSpans.SelectMany(s => new[] { s.Start, s.Start + s.Length }).ToList();
        var (ids, at) = TokenAlignment.Encode(tokenizer, text, bos, specialTokens: true, rendered.ContentSpans, boundaries);
        var all = new List<int>(ids);
        var mask = new List<bool>(new bool[ids.Length]);
        for (int k = 0; k < at.Length; k += 2)
            for (int i = at[k]; i < at[k + 1]; i++) mask[i] = true;

        var last = rendered.AssistantSpans.Count > 0 ? rendered.AssistantSpans[^1] : default;
        bool endsWithAssistant = rendered.AssistantSpans.Count > 0 && last.Start + last.Length == text.Length;
        if (endsWithAssistant && tokenizer.EosId is int eos && (all.Count == 0 || !tokenizer.EosIds.Contains(all[^1])))
        {
            all.Add(eos);
            mask.Add(true);
        }
        return Truncate(all.ToArray(), mask.ToArray(), maxLength);
    }

    private static SftExample Truncate(int[] ids, bool[] mask, int maxLength)
    {
        if (maxLength < 1) throw new RlhfException($"max length must be at least 1, got {maxLength}");
        return ids.Length <= maxLength ? new SftExample(ids, mask) : new SftExample(ids[..maxLength], mask[..maxLength]);
    }
}
