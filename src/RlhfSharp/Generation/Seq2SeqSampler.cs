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
    /// <param name="onToken">Called with (row, token id) as each token is chosen, for streaming.</param>
    /// <param name="onSampled">Called as each token is chosen, with its model log-probabilities (as <see cref="Sampler.Generate"/>).</param>
    public IReadOnlyList<Completion> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options,
        Action<int, int>? onToken = null, CancellationToken cancel = default, Action<SampledToken>? onSampled = null)
    {
        using var scope = NewDisposeScope();
        var (ids, mask) = RightPad(prompts);
        var (tokens, logprobs, reasons) = Sample(ids, mask, options, useCache: true, onToken: onToken, cancel: cancel, onSampled: onSampled);
        return prompts.Select((p, i) =>
        {
            string text = tokenizer is null ? "" : Sampler.CutAtStop(tokenizer.Decode(tokens[i]), options.StopStrings);
            return new Completion(p, tokens[i], text, logprobs[i], reasons[i]);
        }).ToList();
    }

    /// <summary>
    /// Rollouts for PPO as a <see cref="SampleBatch"/>: <see cref="SampleBatch.Sequences"/> = the right-padded encoder
    /// prompts (width P = <see cref="SampleBatch.PromptLength"/>) followed by the decoder tokens after the start token
    /// (pad after a row finished), the attention mask = the encoder mask then the response mask, so the rows decode to
    /// (prompt, completion) text as the decoder-only rollouts do.
    /// </summary>
    /// <param name="tokenMask">When given, only the tokens it allows can be picked at each step (NLPO's masking policy).</param>
    public SampleBatch Rollouts(IReadOnlyList<int[]> prompts, SamplingOptions options, CancellationToken cancel = default, ITokenMask? tokenMask = null)
    {
        using var scope = NewDisposeScope();
        var (ids, mask) = RightPad(prompts);
        var rawLists = Enumerable.Range(0, prompts.Count).Select(_ => new List<float>()).ToArray();
        var (tokens, logprobs, reasons) = Sample(ids, mask, options, useCache: true, cancel: cancel, modelLogprobs: rawLists, tokenMask: tokenMask);
        int b = prompts.Count, p = (int)ids.shape[1], n = Math.Max(1, tokens.Max(t => t.Length));
        var response = new long[b * n];
        var responseMask = new float[b * n];
        var lp = new float[b * n];
        var raw = new float[b * n];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < n; j++)
            {
                bool real = j < tokens[i].Length;
                response[i * n + j] = real ? tokens[i][j] : PadId;
                responseMask[i * n + j] = real ? 1 : 0;
                lp[i * n + j] = real ? logprobs[i][j] : 0;
                raw[i * n + j] = real ? rawLists[i][j] : 0;
            }
        var device = ids.device;
        var rm = tensor(responseMask, [b, n], device: device);
        return new SampleBatch
        {
            Sequences = cat([ids, tensor(response, [b, n], device: device)], 1).MoveToOuterDisposeScope(),
            AttentionMask = cat([mask, rm.to(ScalarType.Int64)], 1).MoveToOuterDisposeScope(),
            ResponseMask = rm.MoveToOuterDisposeScope(),
            Logprobs = tensor(lp, [b, n], device: device).MoveToOuterDisposeScope(),
            ModelLogprobs = tensor(raw, [b, n], device: device).MoveToOuterDisposeScope(),
            PromptLength = p, NewTokens = tokens, FinishReasons = reasons,
        };
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
    /// checked against); <paramref name="stepLogits"/> receives each step's raw logits (B, V); <paramref name="modelLogprobs"/>,
    /// when given, each row's log-softmax of the raw logits at its chosen tokens. The scores go through the decoder-only
    /// sampler's <see cref="LogitsProcessorList"/> (logit bias, penalties, <c>min_new_tokens</c>, the token mask, then the
    /// warpers), with transformers' encoder-decoder <c>input_ids</c>: the decoder's tokens (start token and new tokens),
    /// not the encoder prompt, so the repetition penalty also lowers the start token and the presence/frequency
    /// penalties count new tokens only, as for decoder-only models. <paramref name="tokenMask"/> gets the encoder prompts
    /// (right-padded) in <see cref="ITokenMask.Begin"/> and each step's decoder input in <see cref="ITokenMask.Advance"/>
    /// (with the encoder mask; positions are unused by T5). <paramref name="onSampled"/> gets each chosen token with its
    /// model log-prob and, with <see cref="SamplingOptions.TopLogprobs"/>, the model's most likely tokens.
    /// </summary>
    public (int[][] Tokens, float[][] Logprobs, FinishReason[] Reasons) Sample(Tensor inputIds, Tensor attentionMask, SamplingOptions o,
        bool useCache = true, List<Tensor>? stepLogits = null, Action<int, int>? onToken = null, CancellationToken cancel = default,
        List<float>[]? modelLogprobs = null, ITokenMask? tokenMask = null, Action<SampledToken>? onSampled = null)
    {
        o.Validate();
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
        tokenMask?.Begin(inputIds, attentionMask, maxNew);
        var processors = LogitsProcessorList.For(o, eos, model.Config.VocabSize, tokenMask);
        using var counts = processors.NeedsCounts ? zeros(b, model.Config.VocabSize, ScalarType.Float32, device).DetachFromDisposeScope() : null;
        // The processors' "prompt" is what transformers passes them for an encoder-decoder: the decoder start token.
        var state = new DecodingState { PromptIds = decoded[0].ToArray(), PromptMask = Enumerable.Repeat(1L, b).ToArray(), PromptLength = 1, Generated = tokens, Counts = counts };
        var stops = o.StopStrings.Count > 0 && tokenizer is not null ? new StopStringCheck(tokenizer, o.StopStrings, b) : null;
        int topK = o.TopLogprobs is int k ? Math.Min(k, model.Config.VocabSize) : -1;
        for (int s = 0; s < maxNew; s++)
        {
            cancel.ThrowIfCancellationRequested();
            long[] next; float[] nextLogprob, nextRaw; float[] host;
            int width;
            using (NewDisposeScope())
            {
                Tensor input = useCache
                    ? tensor(decoded[^1], [b, 1], device: device)
                    : tensor(Enumerable.Range(0, b).SelectMany(i => decoded.Select(step => step[i])).ToArray(), [b, decoded.Count], device: device);
                var h = model.Decode(input, encoderStates, attentionMask, cache: cache);
                var logits = model.Head(h.narrow(1, h.shape[1] - 1, 1)).squeeze(1).to(ScalarType.Float32);
                stepLogits?.Add(logits.clone().MoveToOuterDisposeScope());
                state.Step = s;
                var scores = processors.Process(logits, state);
                // Greedy: the argmax. Sampling: a draw from the processed scores, whose log-softmax is the distribution
                // the token was drawn from (renormalised over what top-k/top-p kept).
                var chosen = o.Greedy ? scores.argmax(-1, keepdim: true) : scores.softmax(-1).multinomial(1, generator: generator);
                var logprob = scores.log_softmax(-1).gather(1, chosen);
                counts?.scatter_add_(1, chosen, ones(b, 1, ScalarType.Float32, device));
                var rawAll = logits.log_softmax(-1);
                List<Tensor> parts = [chosen.to(ScalarType.Float32), logprob, rawAll.gather(1, chosen)];
                if (topK >= 0)
                {
                    var top = rawAll.topk(topK, -1);
                    parts.AddRange([top.values, top.indexes.to(ScalarType.Float32)]);
                }
                host = cat(parts, 1).cpu().data<float>().ToArray();
                width = host.Length / b;
                next = new long[b]; nextLogprob = new float[b]; nextRaw = new float[b];
                for (int i = 0; i < b; i++) { next[i] = (long)host[width * i]; nextLogprob[i] = host[width * i + 1]; nextRaw[i] = host[width * i + 2]; }
            }
            for (int i = 0; i < b; i++)
            {
                if (finished[i]) { next[i] = PadId; continue; }
                tokens[i].Add((int)next[i]);
                logprobs[i].Add(nextLogprob[i]);
                modelLogprobs?[i].Add(nextRaw[i]);
                onToken?.Invoke(i, (int)next[i]);
                if (onSampled is not null)
                {
                    // Row i of the host copy: id, logprob, model logprob, k top log-probs, k top ids.
                    int at = i * width;
                    var top = topK < 0 ? [] : Enumerable.Range(0, topK).Select(j => ((int)host[at + 3 + topK + j], host[at + 3 + j])).ToArray();
                    onSampled(new SampledToken(i, (int)next[i], nextRaw[i], top));
                }
                if (o.StopAtEos && eos.Contains((int)next[i])) { finished[i] = true; reasons[i] = FinishReason.Stop; }
                else if (stops is not null && stops.Hits(i, tokens[i])) { finished[i] = true; reasons[i] = FinishReason.Stop; }
            }
            decoded.Add(next);
            if (finished.All(f => f)) break;
            if (tokenMask is not null)
                using (NewDisposeScope()) tokenMask.Advance(tensor(next, [b, 1], device: device), attentionMask, zeros(b, 1, ScalarType.Int64, device));
        }
        return (tokens.Select(t => t.ToArray()).ToArray(), logprobs.Select(l => l.ToArray()).ToArray(), reasons);
    }
}
