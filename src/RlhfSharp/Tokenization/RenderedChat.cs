namespace RlhfSharp.Tokenization;

/// <summary>
/// A conversation rendered by a <see cref="ChatTemplate"/>, with the character spans the trainers need.
/// </summary>
/// <param name="Text">The prompt text, special-token strings included.</param>
/// <param name="AssistantSpans">Per assistant message, (start, length) of what the model must learn to produce: the
/// content and the template's end marker (<c>&lt;|im_end|&gt;</c>, <c>&lt;|eot_id|&gt;</c>, <c>&lt;/s&gt;</c>), as HF's
/// assistant mask covers; SFT computes loss on tokens inside these spans only.</param>
/// <param name="ContentSpans">Per message, (start, length) of its content: pass to
/// <see cref="ITokenizer.EncodeWithSpecialTokens"/> so special strings typed by users stay plain text.</param>
public sealed record RenderedChat(
    string Text,
    IReadOnlyList<(int Start, int Length)> AssistantSpans,
    IReadOnlyList<(int Start, int Length)> ContentSpans);
