using RlhfSharp.Models;
using RlhfSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// Batched autoregressive sampling with a KV cache: prompts are left-padded so every row's next token sits
/// in the last column, positions come from the attention mask (as HF <c>generate</c> does), and each step
/// runs the model on one token per row. Each step has its own dispose scope; only the cache outlives it.
/// The scores go through a <see cref="LogitsProcessorList"/> (penalties, then the sampling warpers) before the argmax or
/// the draw, and a row's stop strings are looked for in the text its new token adds (<see cref="StopStringCheck"/>).
/// </summary>
public sealed class Sampler(CausalLM model, ITokenizer? tokenizer = null)
{
    /// <summary>The pad id used to left-pad prompts and to fill rows that finished.</summary>
    public int PadId { get; init; } = tokenizer?.PadId ?? model.Config.PadTokenId ?? model.Config.EosTokenIds.FirstOrDefault();

    /// <summary>EOS ids that end a row; from the tokenizer, else the model config.</summary>
    public IReadOnlyList<int> EosIds { get; init; } = tokenizer is { EosIds.Count: > 0 } ? tokenizer.EosIds : model.Config.EosTokenIds;

    /// <summary>Samples completions for token-id prompts (used exactly as given: no BOS is added here).</summary>
    /// <param name="onToken">Called with (row, token id) as each token is chosen, for streaming.</param>
    /// <param name="onSampled">Called as each token is chosen, with its model log-probabilities when asked for.</param>
    public IReadOnlyList<Completion> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options,
        Action<int, int>? onToken = null, CancellationToken cancel = default, Action<SampledToken>? onSampled = null)
    {
        using var scope = NewDisposeScope();
        var (ids, mask) = LeftPad(prompts);
        using var batch = Sample(ids, mask, options, onToken, cancel, onSampled);
        var logprobs = batch.Logprobs.cpu().data<float>().ToArray();
        int n = (int)batch.Logprobs.shape[1];
        return prompts.Select((p, i) =>
        {
            var newIds = batch.NewTokens[i];
            string text = tokenizer is null ? "" : CutAtStop(tokenizer.Decode(newIds), options.StopStrings);
            return new Completion(p, newIds, text, logprobs.AsSpan(i * n, newIds.Length).ToArray(), batch.FinishReasons[i]);
        }).ToList();
    }

    /// <summary>
    /// <paramref name="n"/> samples of every prompt in one left-padded batch: rows i·n … i·n+n−1 belong to prompt i (the
    /// groups of GRPO, the candidates of best-of-n, the pairs of online DPO).
    /// </summary>
    public SampleBatch SampleGroups(IReadOnlyList<int[]> prompts, int n, SamplingOptions options, CancellationToken cancel = default)
    {
        using var scope = NewDisposeScope();
        var (ids, mask) = LeftPad(prompts.SelectMany(p => Enumerable.Repeat(p, n)).ToList());
        return Sample(ids, mask, options, cancel: cancel);
    }

    /// <summary>Left-pads token-id prompts into (B, P) ids and mask on the model's device.</summary>
    public (Tensor Ids, Tensor Mask) LeftPad(IReadOnlyList<int[]> prompts)
    {
        if (prompts.Count == 0) throw new RlhfException("no prompts to generate from.");
        int p = prompts.Max(x => x.Length);
        if (p == 0) throw new RlhfException("a prompt is empty: give at least one token (e.g. BOS).");
        var ids = new long[prompts.Count * p];
        var mask = new long[prompts.Count * p];
        for (int i = 0; i < prompts.Count; i++)
        {
            int start = p - prompts[i].Length;
            for (int j = 0; j < p; j++)
            {
                bool real = j >= start;
                ids[i * p + j] = real ? prompts[i][j - start] : PadId;
                mask[i * p + j] = real ? 1 : 0;
                if (real && (prompts[i][j - start] < 0 || prompts[i][j - start] >= model.Config.VocabSize))
                    throw new RlhfException($"prompt {i}: token id {prompts[i][j - start]} is outside the model's vocabulary (0..{model.Config.VocabSize - 1}).");
            }
        }
        var device = model.model.Embeddings.weight!.device;
        return (tensor(ids, [prompts.Count, p], device: device), tensor(mask, [prompts.Count, p], device: device));
    }

    /// <summary>Samples from left-padded prompts (B, P); the result's tensors outlive the caller's dispose scope.</summary>
    public SampleBatch Sample(Tensor promptIds, Tensor promptMask, SamplingOptions o, Action<int, int>? onToken = null, CancellationToken cancel = default,
        Action<SampledToken>? onSampled = null)
    {
        o.Validate();
        int b = (int)promptIds.shape[0], p = (int)promptIds.shape[1], maxNew = o.MaxNewTokens;
        var device = promptIds.device;
        var dtype = model.model.Embeddings.weight!.dtype;
        if (p + maxNew > model.Config.MaxPositions)
            throw new RlhfException($"prompt ({p}) + max_new_tokens ({maxNew}) exceeds the model's {model.Config.MaxPositions} positions.");

        using var generator = new Generator(o.Seed, device);
        using var cache = new KvCache(model.Config, b, p + maxNew, dtype, device);
        var tokens = new List<int>[b];
        for (int i = 0; i < b; i++) tokens[i] = new List<int>(maxNew);
        var lp = new float[b * maxNew];
        var modelLp = new float[b * maxNew];
        var finished = new bool[b];
        var reasons = Enumerable.Repeat(FinishReason.Length, b).ToArray();
        var eos = EosIds.ToHashSet();
        var promptHost = promptIds.cpu().data<long>().ToArray();
        var maskHost = promptMask.cpu().data<long>().ToArray();

        using var _ = no_grad();
        using var fullMask = cat([promptMask.to(int64), ones(b, maxNew, int64, device)], 1).DetachFromDisposeScope();
        using var lastPosition = Transformer.PositionsFromMask(promptMask).narrow(1, p - 1, 1).DetachFromDisposeScope();
        Tensor logits;
        using (NewDisposeScope())
            logits = model.Forward(promptIds, promptMask, Transformer.PositionsFromMask(promptMask), cache, lastOnly: true)
                .squeeze(1).to(float32).MoveToOuterDisposeScope();

        var processors = LogitsProcessorList.For(o, eos, logits.shape[1]);
        // Tokens each row generated so far, (B, V), for OpenAI's presence/frequency penalties.
        using var counts = processors.NeedsCounts ? zeros(b, logits.shape[1], float32, device).DetachFromDisposeScope() : null;
        var state = new DecodingState { PromptIds = promptHost, PromptMask = maskHost, PromptLength = p, Generated = tokens, Counts = counts };
        var stops = o.StopStrings.Count > 0 && tokenizer is not null ? new StopStringCheck(tokenizer, o.StopStrings, b) : null;
        int topK = o.TopLogprobs is int k ? (int)Math.Min(k, logits.shape[1]) : -1;
        int steps = 0;
        for (int s = 0; s < maxNew; s++)
        {
            cancel.ThrowIfCancellationRequested();
            long[] next; float[] nextLogprob, nextModelLogprob; float[]? modelHost = null;
            using (NewDisposeScope())
            {
                state.Step = s;
                var scores = processors.Process(logits, state);
                // Greedy: the argmax. Sampling: a draw from the processed scores, whose log-softmax is the distribution
                // the token was drawn from (renormalised over what top-k/top-p kept).
                var chosen = o.Greedy ? scores.argmax(-1, keepdim: true) : scores.softmax(-1).multinomial(1, generator: generator);
                var logprob = scores.log_softmax(-1).gather(1, chosen);
                counts?.scatter_add_(1, chosen, ones(b, 1, float32, device));
                // One device-to-host copy per step: ids (exact in float32 below 2^24) next to their sampling log-probs and
                // their log-probs under the raw model, then, for top_logprobs, the model's top k log-probs and ids.
                var raw = logits.log_softmax(-1);
                List<Tensor> parts = [chosen.to(float32), logprob, raw.gather(1, chosen)];
                if (topK >= 0)
                {
                    var top = raw.topk(topK, -1);
                    parts.AddRange([top.values, top.indexes.to(float32)]);
                }
                var host = cat(parts, 1).cpu().data<float>().ToArray();
                int width = (int)host.Length / b;
                next = new long[b]; nextLogprob = new float[b]; nextModelLogprob = new float[b];
                for (int i = 0; i < b; i++) { next[i] = (long)host[width * i]; nextLogprob[i] = host[width * i + 1]; nextModelLogprob[i] = host[width * i + 2]; }
                if (topK >= 0) modelHost = host;
            }
            for (int i = 0; i < b; i++)
            {
                if (finished[i]) { next[i] = PadId; continue; }
                tokens[i].Add((int)next[i]);
                lp[i * maxNew + s] = nextLogprob[i];
                modelLp[i * maxNew + s] = nextModelLogprob[i];
                onToken?.Invoke(i, (int)next[i]);
                if (onSampled is not null)
                {
                    // Row i of the host copy: id, logprob, model logprob, k top log-probs, k top ids.
                    int w = 3 + 2 * topK, at = i * w;
                    var top = modelHost is null ? [] : Enumerable.Range(0, topK).Select(j => ((int)modelHost[at + 3 + topK + j], modelHost[at + 3 + j])).ToArray();
                    onSampled(new SampledToken(i, (int)next[i], nextModelLogprob[i], top));
                }
                if (o.StopAtEos && eos.Contains((int)next[i])) { finished[i] = true; reasons[i] = FinishReason.Stop; }
                else if (stops is not null && stops.Hits(i, tokens[i])) { finished[i] = true; reasons[i] = FinishReason.Stop; }
            }
            steps = s + 1;
            if (finished.All(f => f) || s == maxNew - 1) break;
            using (NewDisposeScope())
            {
                var input = tensor(next, [b, 1], device: device);
                var position = lastPosition + (s + 1);
                var newLogits = model.Forward(input, fullMask.narrow(1, 0, p + s + 1), position, cache, lastOnly: true)
                    .squeeze(1).to(float32).MoveToOuterDisposeScope();
                logits.Dispose();
                logits = newLogits;
            }
        }
        logits.Dispose();
        GC.Collect(0); // finalizer-held native handles of this generation (see Training.Optimizer.Apply)

        var seqHost = new long[b * (p + steps)];
        var attnHost = new long[b * (p + steps)];
        var respHost = new float[b * steps];
        var lpHost = new float[b * steps];
        var modelLpHost = new float[b * steps];
        for (int i = 0; i < b; i++)
        {
            for (int j = 0; j < p; j++) { seqHost[i * (p + steps) + j] = promptHost[i * p + j]; attnHost[i * (p + steps) + j] = maskHost[i * p + j]; }
            for (int j = 0; j < steps; j++)
            {
                bool real = j < tokens[i].Count;
                seqHost[i * (p + steps) + p + j] = real ? tokens[i][j] : PadId;
                attnHost[i * (p + steps) + p + j] = real ? 1 : 0;
                respHost[i * steps + j] = real ? 1 : 0;
                lpHost[i * steps + j] = real ? lp[i * maxNew + j] : 0;
                modelLpHost[i * steps + j] = real ? modelLp[i * maxNew + j] : 0;
            }
        }
        return new SampleBatch
        {
            Sequences = tensor(seqHost, [b, p + steps], device: device).DetachFromDisposeScope(),
            AttentionMask = tensor(attnHost, [b, p + steps], device: device).DetachFromDisposeScope(),
            ResponseMask = tensor(respHost, [b, steps], device: device).DetachFromDisposeScope(),
            Logprobs = tensor(lpHost, [b, steps], device: device).DetachFromDisposeScope(),
            ModelLogprobs = tensor(modelLpHost, [b, steps], device: device).DetachFromDisposeScope(),
            PromptLength = p,
            NewTokens = tokens.Select(t => t.ToArray()).ToArray(),
            FinishReasons = reasons,
        };
    }

    /// <summary>Cuts <paramref name="text"/> before the first stop string it contains (as <see cref="Generate"/> does).</summary>
    public static string CutAtStop(string text, IReadOnlyList<string> stops)
    {
        int cut = text.Length;
        foreach (var s in stops)
        {
            if (s.Length == 0) continue;
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && at < cut) cut = at;
        }
        return text[..cut];
    }
}
