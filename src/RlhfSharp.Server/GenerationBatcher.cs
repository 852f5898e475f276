using System.Threading.Channels;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Server;

/// <summary>
/// The one generation loop every request shares.
/// </summary>
/// <remarks>
/// Design (step-level batching, the simplest form of continuous batching):
/// <list type="number">
/// <item>Requests go into a queue. A dedicated thread (TorchSharp dispose scopes are thread-local, and one thread
/// owns the model) blocks for the first waiting request, waits <see cref="ServerOptions.BatchWindow"/> so that
/// concurrent requests can arrive, then takes everything waiting. Requests that arrive while a batch runs join
/// the next batch.</item>
/// <item>Rows are grouped by sampling key (temperature, top_p, seed, presence and frequency penalties), because <see cref="Sampler"/> applies one
/// <see cref="SamplingOptions"/> to the whole batch; each group is packed into batches whose longest prompt plus
/// largest max_tokens fits the model's positions. Each choice of a request (<c>n</c>) is its own row.</item>
/// <item>The batch runs to the largest max_tokens of its rows; each row's own max_tokens, stop strings and EOS are
/// applied in the per-token callback, which streams that row's text and finishes it there. When every row has
/// finished (or its client went away) the batch is cancelled so short requests do not pay for long ones.</item>
/// </list>
/// A failed batch fails only its own requests; the loop goes on.
/// </remarks>
public sealed class GenerationBatcher : IDisposable
{
    readonly Channel<GenerationRequest> waiting = Channel.CreateUnbounded<GenerationRequest>();
    readonly ITextGenerator model;
    readonly HashSet<int> eos;
    readonly ServerOptions options;
    readonly CancellationTokenSource stopping = new();
    readonly Thread worker;
    int batches, rows;

    /// <summary>Starts the generation thread for <paramref name="model"/>.</summary>
    public GenerationBatcher(ITextGenerator model, ServerOptions options)
    {
        this.model = model;
        this.options = options;
        eos = model.EosIds.ToHashSet();
        worker = new Thread(Loop) { IsBackground = true, Name = "rlhf-serve-generation" };
        worker.Start();
    }

    /// <summary>Number of <see cref="Sampler.Generate"/> calls so far (a test checks requests share batches).</summary>
    public int BatchesRun => Volatile.Read(ref batches);

    /// <summary>Number of rows (choices) generated so far.</summary>
    public int RowsRun => Volatile.Read(ref rows);

    /// <summary>Queues a request; its text arrives on <see cref="GenerationRequest.Events"/>.</summary>
    public void Submit(GenerationRequest request)
    {
        request.Unfinished = request.Choices;
        if (!waiting.Writer.TryWrite(request)) throw new InvalidOperationException("the server is shutting down.");
    }

    void Loop()
    {
        try
        {
            while (waiting.Reader.WaitToReadAsync(stopping.Token).AsTask().GetAwaiter().GetResult())
            {
                Thread.Sleep(options.BatchWindow);
                var pending = new List<GenerationRequest>();
                while (waiting.Reader.TryRead(out var r)) pending.Add(r);
                // Run catches generation failures per batch; this guard keeps the one loop alive whatever else
                // goes wrong, because every later request would otherwise wait forever.
                try
                {
                    foreach (var r in pending.Where(r => r.EchoLogprobs && !r.Cancel.IsCancellationRequested)) SendPromptLogprobs(r);
                    // max_tokens 0 (echo): nothing to generate; each choice ends at once, cut by its length.
                    foreach (var r in pending.Where(r => r.MaxTokens == 0))
                    {
                        for (int i = 0; i < r.Choices; i++) r.Events.Writer.TryWrite(new ChoiceEvent(i, "", "length"));
                        r.Events.Writer.TryComplete();
                    }
                    foreach (var batch in Plan(pending.Where(r => r.MaxTokens > 0).ToList())) Run(batch);
                }
                catch (Exception e) { foreach (var r in pending) r.Events.Writer.TryComplete(e); }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested) { }
    }

    /// <summary>Scores the prompt once and gives every choice its copy, ahead of the generated tokens.</summary>
    void SendPromptLogprobs(GenerationRequest r)
    {
        var tokens = PromptLogprobs.Of(model, r.PromptIds, r.Sampling.TopLogprobs ?? 0);
        for (int i = 0; i < r.Choices; i++) r.Events.Writer.TryWrite(new ChoiceEvent(i, "", Logprobs: tokens, Prompt: true));
    }

    /// <summary>Groups rows by sampling key and packs each group into batches that fit the model.</summary>
    List<List<Row>> Plan(List<GenerationRequest> pending)
    {
        var result = new List<List<Row>>();
        var live = pending.Where(r => !r.Cancel.IsCancellationRequested).ToList();
        foreach (var r in pending.Except(live)) r.Events.Writer.TryComplete();
        // Greedy rows ignore top_p and seed, so they share a key with other greedy rows of the same penalties and bias;
        // unseeded rows share the key "no seed" (null), so they still batch together under one fresh seed.
        foreach (var group in live.GroupBy(r => r.Sampling.Temperature <= 0
                     ? (0.0, 1.0, (ulong?)0UL, r.Sampling.PresencePenalty, r.Sampling.FrequencyPenalty, BiasKey(r.Sampling.LogitBias))
                     : (r.Sampling.Temperature, r.Sampling.TopP, r.Seed, r.Sampling.PresencePenalty, r.Sampling.FrequencyPenalty, BiasKey(r.Sampling.LogitBias))))
        {
            List<Row> current = [];
            int longestPrompt = 0, mostTokens = 0;
            foreach (var r in group)
                for (int i = 0; i < r.Choices; i++)
                {
                    int p = Math.Max(longestPrompt, r.PromptIds.Length), t = Math.Max(mostTokens, r.MaxTokens);
                    if (current.Count > 0 && (t > model.ReplyRoom(p) || current.Count >= options.MaxBatchRows))
                    {
                        result.Add(current);
                        current = [];
                        p = r.PromptIds.Length; t = r.MaxTokens;
                    }
                    current.Add(new Row(r, i));
                    longestPrompt = p; mostTokens = t;
                }
            if (current.Count > 0) result.Add(current);
        }
        return result;
    }

    static string BiasKey(IReadOnlyDictionary<int, double>? bias) =>
        bias is null ? "" : string.Join(",", bias.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}:{kv.Value:R}"));

    void Run(List<Row> batch)
    {
        var first = batch[0].Request;
        var sampling = first.Sampling with
        {
            MaxNewTokens = batch.Max(r => r.Request.MaxTokens),
            Seed = first.Seed ?? (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue),
            // Rows that asked for fewer alternatives take a prefix of the batch's largest request.
            TopLogprobs = batch.Select(r => r.Request.Sampling.TopLogprobs).Max(),
        };
        // Linked to the server's stop, so shutdown waits for one decoding step, not for the whole batch.
        using var done = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
        Interlocked.Increment(ref batches);
        Interlocked.Add(ref rows, batch.Count);
        try
        {
            model.Generate(batch.Select(r => r.Request.PromptIds).ToList(), sampling, cancel: done.Token, onSampled: token =>
            {
                OnToken(batch[token.Row], token);
                if (batch.All(r => r.Done)) done.Cancel();
            });
            foreach (var row in batch.Where(r => !r.Done)) Finish(row, "length");
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
            if (stopping.IsCancellationRequested)
                foreach (var r in batch.Where(r => !r.Done).Select(r => r.Request).Distinct()) r.Events.Writer.TryComplete(new OperationCanceledException("the server is shutting down."));
        }
        catch (Exception e)
        {
            foreach (var r in batch.Select(r => r.Request).Distinct()) r.Events.Writer.TryComplete(e);
            foreach (var row in batch) row.Done = true;
        }
    }

    void OnToken(Row row, SampledToken sampled)
    {
        if (row.Done) return;
        var r = row.Request;
        int token = sampled.Id;
        if (r.Cancel.IsCancellationRequested) { Finish(row, null); return; }
        // EOS is not part of the completion: neither its text, its count nor its logprob is reported.
        if (eos.Contains(token)) { Finish(row, "stop"); return; }
        row.Tokens.Add(token);
        if (r.Sampling.TopLogprobs is int k) row.Logprobs.Add(Describe(sampled, k));
        string text = model.Tokenizer.Decode(row.Tokens);
        int stopAt = FirstStop(text, r.Stop);
        if (stopAt >= 0) { Emit(row, text[..stopAt]); Finish(row, "stop"); }
        else if (row.Tokens.Count >= r.MaxTokens) { Emit(row, text); Finish(row, "length"); }
        else Emit(row, text[..Settled(text, r.Stop)]);
    }

    /// <summary>
    /// How much of <paramref name="text"/> can be sent now: not a trailing U+FFFD (a UTF-8 sequence still
    /// arriving), nor a tail that may grow into a stop string (it would have to be taken back).
    /// </summary>
    static int Settled(string text, IReadOnlyList<string> stops)
    {
        int end = text.Length;
        while (end > 0 && text[end - 1] == '\uFFFD') end--;
        int keep = end;
        foreach (var s in stops)
            for (int len = Math.Min(s.Length - 1, end); len > 0; len--)
                if (string.CompareOrdinal(text, end - len, s, 0, len) == 0) { keep = Math.Min(keep, end - len); break; }
        return keep;
    }

    static int FirstStop(string text, IReadOnlyList<string> stops)
    {
        int cut = -1;
        foreach (var s in stops)
        {
            if (s.Length == 0) continue;
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        return cut;
    }

    TokenLogprob Describe(SampledToken sampled, int k)
    {
        TokenLogprob Entry(int id, float logprob, IReadOnlyList<TokenLogprob> top) =>
            new(model.Tokenizer.Decode([id], skipSpecial: false), model.Tokenizer.TokenBytes(id), logprob, top);
        return Entry(sampled.Id, sampled.ModelLogprob, [.. sampled.Top.Take(k).Select(t => Entry(t.Id, t.Logprob, []))]);
    }

    static void Emit(Row row, string visible)
    {
        // Decoding more tokens can in principle rewrite earlier text; what was sent cannot be taken back, so only
        // a pure extension is sent. Logprobs of tokens whose text is held back wait for the next event.
        if (visible.Length <= row.Shown.Length || !visible.StartsWith(row.Shown, StringComparison.Ordinal)) return;
        row.Request.Events.Writer.TryWrite(new ChoiceEvent(row.Index, visible[row.Shown.Length..], Logprobs: TakeLogprobs(row)));
        row.Shown = visible;
    }

    static List<TokenLogprob>? TakeLogprobs(Row row)
    {
        if (row.Request.Sampling.TopLogprobs is null) return null;
        var taken = row.Logprobs.ToList();
        row.Logprobs.Clear();
        return taken;
    }

    /// <summary>Ends a row; a null reason (client gone) ends it silently.</summary>
    static void Finish(Row row, string? reason)
    {
        row.Done = true;
        var r = row.Request;
        if (reason is not null) r.Events.Writer.TryWrite(new ChoiceEvent(row.Index, "", reason, row.Tokens.Count, TakeLogprobs(row)));
        if (--r.Unfinished == 0) r.Events.Writer.TryComplete();
    }

    /// <summary>One choice of one request, generating in the current batch.</summary>
    sealed class Row(GenerationRequest request, int index)
    {
        public GenerationRequest Request { get; } = request;
        public int Index { get; } = index;
        public List<int> Tokens { get; } = [];
        /// <summary>Logprobs of tokens not yet sent in an event.</summary>
        public List<TokenLogprob> Logprobs { get; } = [];
        public string Shown { get; set; } = "";
        public bool Done { get; set; }
    }

    /// <summary>Stops the loop after the running batch; waiting requests are failed.</summary>
    public void Dispose()
    {
        waiting.Writer.TryComplete();
        stopping.Cancel();
        worker.Join(TimeSpan.FromSeconds(30));
        while (waiting.Reader.TryRead(out var r)) r.Events.Writer.TryComplete(new InvalidOperationException("the server is shutting down."));
        stopping.Dispose();
    }
}
