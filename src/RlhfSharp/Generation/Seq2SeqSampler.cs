using RlhfSharp.Models.T5;
using RlhfSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// Generation for an encoder-decoder (T5) as transformers v4.44 <c>generate</c> does it: the encoder runs once over the
/// right-padded prompts, the decoder starts from <c>decoder_start_token_id</c> and runs one token per step with a
/// self-attention cache, and each layer's cross-attention keys and values are computed on the first step and reused.
/// The prompt ids are the encoder's input; the new ids are the decoder's tokens after the start token.
/// </summary>
public sealed class Seq2SeqSampler(T5ForConditionalGeneration model, ITokenizer? tokenizer = null)
{
    /// <summary>The pad id used to right-pad prompts and to fill rows that finished.</summary>
    public int PadId { get; init; } = tokenizer?.PadId ?? model.Config.PadTokenId;

    /// <summary>EOS ids that end a row; from the tokenizer, else the model config.</summary>
    public IReadOnlyList<int> EosIds { get; init; } = tokenizer is { EosIds.Count: > 0 } ? tokenizer.EosIds : [model.Config.EosTokenId];

    /// <summary>Samples completions for token-id prompts (the encoder inputs, used as given).</summary>
    public IReadOnlyList<Completion> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options,
        Action<int, int>? onToken = null, CancellationToken cancel = default)
    {
        using var scope = NewDisposeScope();
        var (ids, mask) = RightPad(prompts);
        var (tokens, logprobs, reasons) = Sample(ids, mask, options, useCache: true, onToken: onToken, cancel: cancel);
        return prompts.Select((p, i) =>
        {
            string text = tokenizer is null ? "" : Sampler.CutAtStop(tokenizer.Decode(tokens[i]), options.StopStrings);
            return new Completion(p, tokens[i], text, logprobs[i], reasons[i]);
        }).ToList();
    }

    /// <summary>Prompts right-padded with <see cref="PadId"/> (T5 tokenizers pad on the right), and their 0/1 mask.</summary>
    public (Tensor Ids, Tensor Mask) RightPad(IReadOnlyList<int[]> prompts)
    {
        if (prompts.Count == 0 || prompts.Any(p => p.Length == 0)) throw new RlhfException("every encoder prompt needs at least one token.");
        int width = prompts.Max(p => p.Length);
        var ids = new long[prompts.Count * width];
        var mask = new long[prompts.Count * width];
        for (int i = 0; i < prompts.Count; i++)
            for (int j = 0; j < width; j++)
            {
                bool real = j < prompts[i].Length;
                ids[i * width + j] = real ? prompts[i][j] : PadId;
                mask[i * width + j] = real ? 1 : 0;
            }
        var device = model.shared.weight!.device;
        return (tensor(ids, [prompts.Count, width], device: device), tensor(mask, [prompts.Count, width], device: device));
    }

    /// <summary>
    /// New decoder tokens per row, their log-probs under the sampling distribution and why each row stopped.
    /// <paramref name="useCache"/> false recomputes the whole decoder every step (the plain loop the cached one is
    /// checked against); <paramref name="stepLogits"/> receives each step's raw logits (B, V).
    /// </summary>
    public (int[][] Tokens, float[][] Logprobs, FinishReason[] Reasons) Sample(Tensor inputIds, Tensor attentionMask, SamplingOptions o,
        bool useCache = true, List<Tensor>? stepLogits = null, Action<int, int>? onToken = null, CancellationToken cancel = default)
    {
        o.Validate();
        if (o.RepetitionPenalty != 1.0 || o.PresencePenalty != 0 || o.FrequencyPenalty != 0 || o.TopLogprobs is not null)
            throw new RlhfException("repetition, presence and frequency penalties and top_logprobs are not supported for encoder-decoder models yet.");
        int b = (int)inputIds.shape[0], maxNew = o.MaxNewTokens;
        var device = inputIds.device;
        var dtype = model.shared.weight!.dtype;
        using var _ = no_grad();
        using var generator = new Generator(o.Seed, device);
        using var encoderStates = model.Encode(inputIds, attentionMask).DetachFromDisposeScope();
        using var cache = useCache ? new T5DecoderCache(model.Config, b, Math.Max(1, maxNew), dtype, device) : null;
        var tokens = Enumerable.Range(0, b).Select(_ => new List<int>(maxNew)).ToArray();
        var logprobs = Enumerable.Range(0, b).Select(_ => new List<float>(maxNew)).ToArray();
        var reasons = Enumerable.Repeat(FinishReason.Length, b).ToArray();
        var finished = new bool[b];
        var eos = EosIds.ToHashSet();
        // Every row's decoder input so far: the start token, then what was chosen (pad for finished rows).
        var decoded = new List<long[]> { Enumerable.Repeat((long)model.Config.DecoderStartTokenId, b).ToArray() };
        for (int s = 0; s < maxNew; s++)
        {
            cancel.ThrowIfCancellationRequested();
            long[] next; float[] nextLogprob;
            using (NewDisposeScope())
            {
                Tensor input = useCache
                    ? tensor(decoded[^1], [b, 1], device: device)
                    : tensor(Enumerable.Range(0, b).SelectMany(i => decoded.Select(step => step[i])).ToArray(), [b, decoded.Count], device: device);
                var h = model.Decode(input, encoderStates, attentionMask, cache: cache);
                var logits = model.Head(h.narrow(1, h.shape[1] - 1, 1)).squeeze(1).to(ScalarType.Float32);
                stepLogits?.Add(logits.clone().MoveToOuterDisposeScope());
                var scores = logits;
                if (s < o.MinNewTokens && eos.Count > 0)
                    scores = scores.index_fill(1, tensor(eos.Select(x => (long)x).ToArray(), device: device), float.NegativeInfinity);
                Tensor chosen, logprob;
                if (o.Greedy)
                {
                    chosen = scores.argmax(-1, keepdim: true);
                    logprob = scores.log_softmax(-1).gather(1, chosen);
                }
                else
                {
                    if (o.Temperature != 1.0) scores = scores / o.Temperature;
                    // Top-k then top-p, transformers' warper order, with the decoder-only sampler's warpers.
                    var filtered = scores;
                    if (o.TopK > 0 && o.TopK < scores.shape[1]) filtered = new TopKWarper(o.TopK).Process(filtered, null!);
                    if (o.TopP < 1.0) filtered = new TopPWarper(o.TopP).Process(filtered, null!);
                    chosen = filtered.softmax(-1).multinomial(1, generator: generator);
                    logprob = filtered.log_softmax(-1).gather(1, chosen);
                }
                var host = cat([chosen.to(ScalarType.Float32), logprob], 1).cpu().data<float>().ToArray();
                next = new long[b]; nextLogprob = new float[b];
                for (int i = 0; i < b; i++) { next[i] = (long)host[2 * i]; nextLogprob[i] = host[2 * i + 1]; }
            }
            for (int i = 0; i < b; i++)
            {
                if (finished[i]) { next[i] = PadId; continue; }
                tokens[i].Add((int)next[i]);
                logprobs[i].Add(nextLogprob[i]);
                onToken?.Invoke(i, (int)next[i]);
                if (o.StopAtEos && eos.Contains((int)next[i])) { finished[i] = true; reasons[i] = FinishReason.Stop; }
                else if (o.StopStrings.Count > 0 && tokenizer is not null && o.StopStrings.Any(t => t.Length > 0 && tokenizer.Decode(tokens[i]).Contains(t, StringComparison.Ordinal)))
                { finished[i] = true; reasons[i] = FinishReason.Stop; }
            }
            decoded.Add(next);
            if (finished.All(f => f)) break;
        }
        return (tokens.Select(t => t.ToArray()).ToArray(), logprobs.Select(l => l.ToArray()).ToArray(), reasons);
    }
}
