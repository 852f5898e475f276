namespace RlhfSharp.Server;

/// <summary>
/// One generated token as OpenAI's <c>logprobs</c> report it: its text, its UTF-8 bytes, its log-probability under the
/// model (log-softmax of the raw logits) and the requested number of most likely alternatives.
/// </summary>
public sealed record TokenLogprob(string Token, byte[] Bytes, float Logprob, IReadOnlyList<TokenLogprob> Top);
