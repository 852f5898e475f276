using RlhfSharp.Tokenization;

namespace RlhfSharp.Data;

/// <summary>
/// One SFT demonstration: a prompt and the completion the model should learn to write (TRL's prompt-completion
/// format; a <c>text</c> row loads as an empty prompt and the text as completion), or a whole conversation
/// (TRL's conversational <c>messages</c> format), in which case <see cref="Messages"/> is set and the prompt and
/// completion are empty: the chat template decides the text and the loss covers the assistant turns.
/// </summary>
public sealed record Demonstration(string Prompt, string Completion)
{
    /// <summary>The conversation, for a <c>messages</c> row; null for prompt/completion rows.</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }

    /// <summary>A conversational demonstration.</summary>
    public static Demonstration FromMessages(IReadOnlyList<ChatMessage> messages) => new("", "") { Messages = messages };
}
