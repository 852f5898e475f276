namespace RlhfSharp.Data;

/// <summary>
/// Anthropic HH-RLHF's dialogue strings (Bai et al. 2022): "\n\nHuman: …\n\nAssistant: …", the last assistant turn
/// being the response under comparison.
/// </summary>
public static class HhDialogue
{
    /// <summary>The marker that starts an assistant turn.</summary>
    public const string AssistantMarker = "\n\nAssistant:";

    /// <summary>
    /// Splits at the last <see cref="AssistantMarker"/>: the prompt is the text up to and including it, the response
    /// the rest (with its leading space, which the model writes after "Assistant:"). Null if there is no marker.
    /// </summary>
    public static (string Prompt, string Response)? Split(string dialogue)
    {
        int i = dialogue.LastIndexOf(AssistantMarker, StringComparison.Ordinal);
        if (i < 0) return null;
        int end = i + AssistantMarker.Length;
        return (dialogue[..end], dialogue[end..]);
    }
}
