using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Server;

/// <summary>The OpenAI-compatible routes: <c>/v1/chat/completions</c>, <c>/v1/completions</c>, <c>/v1/models</c>.</summary>
public sealed class OpenAiEndpoints(ITextGenerator model, ChatTemplate template, GenerationBatcher batcher, ServerOptions options)
{
    static readonly JsonSerializerOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    readonly long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>Adds the routes, the bearer-key check and the OpenAI-shaped 404 to <paramref name="app"/>.</summary>
    public void Map(WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (options.ApiKey is string key && context.Request.Headers.Authorization.ToString() != $"Bearer {key}")
            {
                await new OpenAiError(401, "Incorrect or missing API key: send 'Authorization: Bearer KEY'.", code: "invalid_api_key").WriteAsync(context);
                return;
            }
            await next(context);
        });
        app.MapPost("/v1/chat/completions", context => Complete(context, chat: true));
        app.MapPost("/v1/completions", context => Complete(context, chat: false));
        app.MapGet("/v1/models", () => Results.Text(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(ModelObject()),
        }.ToJsonString(Compact), "application/json"));
        // Model names may hold slashes (org/name), hence the catch-all segment.
        app.MapGet("/v1/models/{**id}", async context =>
        {
            string id = context.Request.RouteValues["id"] as string ?? "";
            if (id != options.ModelName)
            {
                await new OpenAiError(404, $"The model '{OpenAiError.Echo(id)}' does not exist: this server serves '{options.ModelName}'.", param: "model", code: "model_not_found").WriteAsync(context);
                return;
            }
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(ModelObject().ToJsonString(Compact), context.RequestAborted);
        });
        app.MapFallback(context => new OpenAiError(404, $"Unknown route {context.Request.Method} {context.Request.Path}.", code: "not_found").WriteAsync(context));
    }

    JsonObject ModelObject() => new() { ["id"] = options.ModelName, ["object"] = "model", ["created"] = created, ["owned_by"] = "rlhfsharp" };

    async Task Complete(HttpContext context, bool chat)
    {
        try
        {
            JsonNode? body;
            var bytes = new MemoryStream();
            try
            {
                await context.Request.Body.CopyToAsync(bytes, context.RequestAborted);
                body = JsonNode.Parse(bytes.GetBuffer().AsMemory(0, (int)bytes.Length).Span);
            }
            catch (JsonException e) { throw new OpenAiError(400, $"The request body is not valid JSON: {e.Message}"); }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            { throw new OpenAiError(413, $"The request body is larger than {options.MaxRequestBytes} bytes."); }
            // Valid JSON syntax, but no text: reading it as a string would throw later (a 500 with no body).
            if (StrictJson.FindDefect(bytes.GetBuffer().AsSpan(0, (int)bytes.Length), duplicates: false) is { } defect)
                throw OpenAiError.Invalid(defect.Path, $"{defect.Message}.");
            var request = OpenAiRequest.Parse(body, chat);
            if (request.Model is string asked && asked != options.ModelName)
                throw new OpenAiError(404, $"The model '{OpenAiError.Echo(asked)}' does not exist: this server serves '{options.ModelName}' (GET /v1/models).", param: "model", code: "model_not_found");
            CheckLength(request, chat);
            // Completions take several prompts; each is its own request to the batcher (they share its batches), and its
            // choices are numbered prompt × n + choice, as OpenAI numbers them.
            var prompts = chat ? [(EncodeChat(request.Messages!), "")] : request.Prompts!.Select(PromptIds).ToList();
            if (request.N * prompts.Count > options.MaxChoices)
                throw OpenAiError.Invalid("n", $"n × prompts must be at most {options.MaxChoices}, got {request.N} × {prompts.Count}.");
            var works = prompts.Select(p => Validate(request, p.Ids, context.RequestAborted)).ToList();
            foreach (var work in works) batcher.Submit(work);
            int promptTokens = prompts.Sum(p => p.Ids.Length);
            // Legacy completions' text_offset counts from the start of the prompt text, as OpenAI's does.
            var promptTexts = prompts.Select(p => p.Text).ToList();
            if (request.Stream) await Stream(context, request, works, chat, promptTokens, promptTexts);
            else await Respond(context, request, works, chat, promptTokens, promptTexts);
        }
        catch (OpenAiError e) { await e.WriteAsync(context); }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested) { }
        catch (RlhfException e) { await new OpenAiError(400, e.Message).WriteAsync(context); }
    }

    /// <summary>
    /// Refuses, before tokenizing, a prompt the context can never hold: no token covers more characters than the longest
    /// token's bytes, so a text longer than positions × that (doubled, for normalizers that fold characters) cannot fit.
    /// Tokenizing it would only burn a core (issue #16: a 935 KB message was still being tokenized after 120 s).
    /// </summary>
    void CheckLength(OpenAiRequest request, bool chat)
    {
        long chars = chat ? request.Messages!.Sum(m => (long)m.Content.Length) : request.Prompts!.Max(p => (long)(p.Text?.Length ?? 0));
        int positions = model.MaxPromptTokens;
        long most = 2L * positions * longestToken.Value;
        if (chars > most)
            throw new OpenAiError(400, $"The prompt has {chars} characters; the model's context of {positions} tokens holds at most {most}.",
                param: chat ? "messages" : "prompt", code: "context_length_exceeded");
    }

    /// <summary>The most bytes any single token decodes to (computed once, on first use).</summary>
    readonly Lazy<int> longestToken = new(() => Math.Max(1, Enumerable.Range(0, model.Tokenizer.VocabSize).Max(id => TokenLength(model.Tokenizer, id))));

    static int TokenLength(ITokenizer tokenizer, int id)
    {
        try { return tokenizer.TokenBytes(id).Length; }
        catch (Exception e) when (e is ArgumentException or KeyNotFoundException or IndexOutOfRangeException) { return 0; } // an id the vocabulary skips
    }

    /// <summary>Chat messages through the model's template; user content never becomes special tokens.</summary>
    int[] EncodeChat(IReadOnlyList<ChatMessage> messages) => model.EncodeChat(template.RenderWithAssistantSpans(messages, addGenerationPrompt: true));

    /// <summary>A completions prompt as token ids and as the text <c>echo</c> returns and <c>text_offset</c> counts from.</summary>
    (int[] Ids, string Text) PromptIds(PromptInput prompt)
    {
        if (prompt.Ids is not int[] ids) return (model.EncodePrompt(prompt.Text!), prompt.Text!);
        int vocab = model.VocabSize;
        if (ids.FirstOrDefault(id => id < 0 || id >= vocab) is int bad && (bad < 0 || bad >= vocab))
            throw OpenAiError.Invalid("prompt", $"token id {bad} is outside the model's vocabulary (0..{vocab - 1}).");
        return (ids, model.Tokenizer.Decode(ids, skipSpecial: false));
    }

    GenerationRequest Validate(OpenAiRequest request, int[] ids, CancellationToken aborted)
    {
        string param = request.Messages is null ? "prompt" : "messages";
        if (ids.Length == 0) throw OpenAiError.Invalid(param, "The prompt encodes to no tokens.");
        int positions = model.MaxPromptTokens;
        int room = model.ReplyRoom(ids.Length);
        // Scoring (echo, max_tokens 0) may fill the whole context; generating needs one position more.
        if (room < (request.MaxTokens == 0 ? 0 : 1) || ids.Length > positions) throw new OpenAiError(400, $"The prompt has {ids.Length} tokens; the model's context is {positions}.", param: param, code: "context_length_exceeded");
        if (request.Echo && request.Sampling.TopLogprobs is not null && !model.ScoresPrompt)
            throw OpenAiError.Invalid("echo", "echo with logprobs needs the prompt's own log-probabilities; an encoder-decoder (T5) reads its prompt and does not predict it.");
        long cap = Math.Min(options.MaxTokensCap, room);
        // No max_tokens: the rest of the context, within the server's cap (OpenAI's chat default is the context's remainder);
        // a reply cut there ends with finish_reason "length".
        long maxTokens = request.MaxTokens ?? cap;
        if (maxTokens > cap)
            throw new OpenAiError(400, $"max_tokens is {maxTokens}; this server allows at most {cap} here (cap {options.MaxTokensCap}, {room} positions left after the {ids.Length}-token prompt).",
                param: "max_tokens", code: "context_length_exceeded");
        if (request.N > options.MaxChoices) throw OpenAiError.Invalid("n", $"n must be at most {options.MaxChoices}, got {request.N}.");
        int vocab = model.VocabSize;
        if (request.Sampling.LogitBias?.Keys.FirstOrDefault(id => id >= vocab) is int outside && outside >= vocab)
            throw OpenAiError.Invalid("logit_bias", $"logit_bias: token id {outside} is outside the model's vocabulary (0..{vocab - 1}).");
        return new GenerationRequest
        {
            PromptIds = ids,
            Choices = (int)request.N,
            MaxTokens = (int)maxTokens,
            Stop = request.Stop,
            // top_p 0 keeps one token: the most likely, i.e. greedy decoding.
            Sampling = request.Sampling with
            {
                Temperature = request.Sampling.TopP == 0 ? 0 : request.Sampling.Temperature,
                TopP = request.Sampling.TopP == 0 ? 1 : request.Sampling.TopP,
                LogitBias = request.Sampling.LogitBias is { Count: > 0 } bias ? bias : null,
            },
            EchoLogprobs = request.Echo && request.Sampling.TopLogprobs is not null,
            Seed = request.Seed,
            Cancel = aborted,
        };
    }

    async Task Respond(HttpContext context, OpenAiRequest request, List<GenerationRequest> works, bool chat, int promptTokens, List<string> promptTexts)
    {
        int n = (int)request.N, total = works.Count * n;
        var text = new System.Text.StringBuilder[total];
        var finish = new string?[total];
        var logprobs = new List<TokenLogprob>[total];
        for (int i = 0; i < total; i++) { text[i] = new(request.Echo ? promptTexts[i / n] : ""); logprobs[i] = []; }
        int completionTokens = 0;
        for (int k = 0; k < works.Count; k++)
            await foreach (var e in works[k].Events.Reader.ReadAllAsync(context.RequestAborted))
            {
                int index = k * n + e.Index;
                text[index].Append(e.Delta);
                if (e.Logprobs is not null) logprobs[index].AddRange(e.Logprobs);
                if (e.FinishReason is not null) { finish[index] = e.FinishReason; completionTokens += e.CompletionTokens; }
            }
        var choices = new JsonArray();
        for (int i = 0; i < total; i++)
        {
            // With echo the logprobs begin with the prompt's tokens, so their text offsets count from 0.
            JsonNode? lp = request.Sampling.TopLogprobs is null ? null : chat ? ChatLogprobs(logprobs[i]) : CompletionLogprobs(logprobs[i], request.Echo ? 0 : promptTexts[i / n].Length);
            choices.Add(chat
                ? new JsonObject { ["index"] = i, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text[i].ToString() }, ["logprobs"] = lp, ["finish_reason"] = finish[i] ?? "length" }
                : new JsonObject { ["index"] = i, ["text"] = text[i].ToString(), ["logprobs"] = lp, ["finish_reason"] = finish[i] ?? "length" });
        }
        var response = Envelope(chat ? "chat.completion" : "text_completion", request);
        response["choices"] = choices;
        response["usage"] = Usage(promptTokens, completionTokens);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(response.ToJsonString(Compact), context.RequestAborted);
    }

    /// <summary>Server-sent events: one chunk per text delta, a finish chunk per choice, usage if asked, then [DONE].</summary>
    async Task Stream(HttpContext context, OpenAiRequest request, List<GenerationRequest> works, bool chat, int promptTokens, List<string> promptTexts)
    {
        int n = (int)request.N, total = works.Count * n;
        bool echoLogprobs = request.Echo && request.Sampling.TopLogprobs is not null;
        var offsets = Enumerable.Range(0, total).Select(i => echoLogprobs ? 0 : promptTexts[i / n].Length).ToArray();
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        string id = NewId(chat);
        async Task Send(JsonNode chunk)
        {
            await context.Response.WriteAsync($"data: {chunk.ToJsonString(Compact)}\n\n", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }
        JsonObject Chunk(int index, string? delta, string? finish, bool role = false, IReadOnlyList<TokenLogprob>? tokens = null)
        {
            var chunk = Envelope(chat ? "chat.completion.chunk" : "text_completion", request, id);
            JsonNode? lp = null;
            if (tokens is not null)
            {
                lp = chat ? ChatLogprobs(tokens) : CompletionLogprobs(tokens, offsets[index]);
                offsets[index] += tokens.Sum(t => t.Token.Length);
            }
            JsonObject choice = chat
                ? new() { ["index"] = index, ["delta"] = role ? new JsonObject { ["role"] = "assistant", ["content"] = "" } : delta is null ? new JsonObject() : new JsonObject { ["content"] = delta }, ["logprobs"] = lp, ["finish_reason"] = finish }
                : new() { ["index"] = index, ["text"] = delta ?? "", ["logprobs"] = lp, ["finish_reason"] = finish };
            chunk["choices"] = new JsonArray(choice);
            return chunk;
        }
        if (chat) for (int i = 0; i < total; i++) await Send(Chunk(i, null, null, role: true));
        // With logprobs the echoed prompt waits for its scores, which come from the batcher as the choice's first event.
        if (request.Echo && !echoLogprobs) for (int i = 0; i < total; i++) await Send(Chunk(i, promptTexts[i / n], null));
        // The prompts' requests generate side by side; their events are merged in arrival order.
        var merged = System.Threading.Channels.Channel.CreateUnbounded<(int Work, ChoiceEvent Event)>();
        var pumps = works.Select(async (w, k) =>
        {
            await foreach (var e in w.Events.Reader.ReadAllAsync(context.RequestAborted)) merged.Writer.TryWrite((k, e));
        }).ToList();
        _ = Task.WhenAll(pumps).ContinueWith(t => merged.Writer.TryComplete(t.Exception?.InnerException), TaskScheduler.Default);
        int completionTokens = 0;
        try
        {
            await foreach (var (k, e) in merged.Reader.ReadAllAsync(context.RequestAborted))
            {
                int index = k * n + e.Index;
                if (e.Prompt) await Send(Chunk(index, promptTexts[k], null, tokens: e.Logprobs));
                else if (e.FinishReason is null) await Send(Chunk(index, e.Delta, null, tokens: e.Logprobs));
                else { completionTokens += e.CompletionTokens; await Send(Chunk(index, null, e.FinishReason, tokens: e.Logprobs is { Count: > 0 } ? e.Logprobs : null)); }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Headers are gone; OpenAI reports a mid-stream failure as an error event.
            await context.Response.WriteAsync($"data: {new OpenAiError(500, e.Message, "server_error").ToJson().ToJsonString(Compact)}\n\n", context.RequestAborted);
        }
        if (request.IncludeUsage)
        {
            var last = Envelope(chat ? "chat.completion.chunk" : "text_completion", request, id);
            last["choices"] = new JsonArray();
            last["usage"] = Usage(promptTokens, completionTokens);
            await Send(last);
        }
        await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
    }

    JsonObject Envelope(string kind, OpenAiRequest request, string? id = null) => new()
    {
        ["id"] = id ?? NewId(kind.StartsWith("chat")),
        ["object"] = kind,
        ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        // Never the request's own string: a 1 MB name was echoed into every stream chunk (issue #16).
        ["model"] = options.ModelName,
        ["system_fingerprint"] = null,
    };

    /// <summary>Chat's shape: <c>{"content":[{"token","logprob","bytes","top_logprobs":[…]}],"refusal":null}</c>.</summary>
    static JsonObject ChatLogprobs(IReadOnlyList<TokenLogprob> tokens)
    {
        static JsonObject Entry(TokenLogprob t, bool withTop)
        {
            var o = new JsonObject { ["token"] = t.Token, ["logprob"] = t.Logprob, ["bytes"] = new JsonArray(t.Bytes.Select(b => (JsonNode)(int)b).ToArray()) };
            if (withTop) o["top_logprobs"] = new JsonArray(t.Top.Select(x => (JsonNode)Entry(x, false)).ToArray());
            return o;
        }
        return new JsonObject { ["content"] = new JsonArray(tokens.Select(t => (JsonNode)Entry(t, true)).ToArray()), ["refusal"] = null };
    }

    /// <summary>
    /// Legacy completions' shape: parallel <c>tokens</c>, <c>token_logprobs</c>, <c>top_logprobs</c> (token → logprob,
    /// the k alternatives plus the sampled token, so up to k + 1 keys) and <c>text_offset</c> (from <paramref name="offset"/>).
    /// </summary>
    static JsonObject CompletionLogprobs(IReadOnlyList<TokenLogprob> tokens, int offset)
    {
        var top = new JsonArray();
        var offsets = new JsonArray();
        foreach (var t in tokens)
        {
            // The prompt's first token has no logprob (NaN from PromptLogprobs): null, as OpenAI sends.
            if (float.IsNaN(t.Logprob)) top.Add(null);
            else
            {
                var alternatives = new JsonObject();
                foreach (var x in t.Top) alternatives.TryAdd(x.Token, x.Logprob);
                alternatives.TryAdd(t.Token, t.Logprob);
                top.Add(alternatives);
            }
            offsets.Add(offset);
            offset += t.Token.Length;
        }
        return new JsonObject
        {
            ["tokens"] = new JsonArray(tokens.Select(t => (JsonNode)t.Token).ToArray()),
            ["token_logprobs"] = new JsonArray(tokens.Select(t => float.IsNaN(t.Logprob) ? null : (JsonNode)t.Logprob).ToArray()),
            ["top_logprobs"] = top,
            ["text_offset"] = offsets,
        };
    }

    static string NewId(bool chat) => (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];

    static JsonObject Usage(int prompt, int completion) => new()
    {
        ["prompt_tokens"] = prompt,
        ["completion_tokens"] = completion,
        ["total_tokens"] = prompt + completion,
    };
}
