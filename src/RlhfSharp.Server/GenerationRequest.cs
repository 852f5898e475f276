using System.Threading.Channels;
using RlhfSharp.Generation;

namespace RlhfSharp.Server;

/// <summary>
/// One API request waiting for the <see cref="GenerationBatcher"/>: a tokenized prompt, its own limits, and the
/// channel its choices' text arrives on. The channel completes when every choice has finished.
/// </summary>
public sealed class GenerationRequest
{
    public required int[] PromptIds { get; init; }
    /// <summary>Number of choices (OpenAI's <c>n</c>); each is its own row of the batch.</summary>
    public int Choices { get; init; } = 1;
    public required int MaxTokens { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    /// <summary>
    /// Temperature (0 is greedy), top_p, the presence and frequency penalties, logit_bias and top_logprobs (null: no
    /// logprobs; k: each token's log-probability and its k most likely alternatives). A batch's rows share all but the last.
    /// </summary>
    public SamplingOptions Sampling { get; init; } = new();
    /// <summary>
    /// Legacy completions' <c>echo</c> with <c>logprobs</c>: before generating, each choice gets an event with the
    /// prompt's own tokens and their log-probabilities (<see cref="ChoiceEvent.Prompt"/>).
    /// </summary>
    public bool EchoLogprobs { get; init; }
    /// <summary>
    /// Seed of the batch's generator. Rows of a batch share one generator, so a seeded sampled request repeats
    /// exactly only when it is batched with the same neighbours (e.g. alone); greedy requests always repeat. Null (no
    /// <c>seed</c> in the request): the batch draws a fresh seed, so identical unseeded requests differ, as OpenAI's do.
    /// </summary>
    public ulong? Seed { get; init; }
    /// <summary>The client's connection: when it goes away the rows stop and the batch may end early.</summary>
    public CancellationToken Cancel { get; init; }

    /// <summary>Text deltas and finish events of all choices, in generation order.</summary>
    public Channel<ChoiceEvent> Events { get; } = Channel.CreateUnbounded<ChoiceEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    /// <summary>Choices of this request still generating (touched only by the batcher's thread).</summary>
    internal int Unfinished;
}

/// <summary>
/// New text of choice <paramref name="Index"/>; a non-null <paramref name="FinishReason"/> ("stop" or "length") ends it,
/// and then <paramref name="CompletionTokens"/> counts its generated tokens. <paramref name="Logprobs"/> (when asked
/// for) covers the tokens generated since the previous event of the choice. <paramref name="Prompt"/>: the event carries
/// the prompt's tokens (<see cref="GenerationRequest.EchoLogprobs"/>), sent before any generated text.
/// </summary>
public readonly record struct ChoiceEvent(int Index, string Delta, string? FinishReason = null, int CompletionTokens = 0, IReadOnlyList<TokenLogprob>? Logprobs = null, bool Prompt = false);
