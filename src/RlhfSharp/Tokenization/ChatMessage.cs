namespace RlhfSharp.Tokenization;

/// <summary>One turn of a conversation. <paramref name="Role"/> is "system", "user" or "assistant".</summary>
public sealed record ChatMessage(string Role, string Content);
