using System.ClientModel;
using System.ClientModel.Primitives;
using OpenAI;
using OpenAI.Chat;
// The OpenAI SDK's message, not our template's (RlhfSharp.Tokenization.ChatMessage, a global using).
using ChatMessage = OpenAI.Chat.ChatMessage;

namespace RlhfSharp.Synthesis;

/// <summary>One reply of the teacher: its text, and for the first token the log-probabilities of its top candidates.</summary>
public sealed record TeacherReply(string Text, IReadOnlyDictionary<string, double> FirstTokenLogprobs);

/// <summary>
/// A stronger model behind an OpenAI-compatible chat endpoint. The official OpenAI .NET SDK does the HTTP work, with
/// its retry policy (exponential backoff on 408/429/5xx, honouring Retry-After); this class adds the concurrency limit,
/// the count of tokens paid for, and errors a user can act on (a refused key, an endpoint that cannot be reached).
/// </summary>
public sealed class Teacher
{
    readonly ChatClient client;
    readonly SemaphoreSlim slots;
    readonly TeacherOptions options;
    long promptTokens, completionTokens, requests;

    public Teacher(TeacherOptions options)
    {
        options.Validate();
        this.options = options;
        string key = Environment.GetEnvironmentVariable(options.ApiKeyVariable) ?? "";
        // A local server without a key (rlhf serve without --api-key) accepts any bearer token; the SDK needs a non-empty one.
        if (key.Length == 0) key = "no-key";
        client = new ChatClient(options.Model, new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = options.BaseUrl,
            NetworkTimeout = TimeSpan.FromSeconds(options.TimeoutSeconds),
            RetryPolicy = new ClientRetryPolicy(options.MaxRetries),
        });
        slots = new SemaphoreSlim(options.Concurrency);
    }

    /// <summary>Requests in flight at once.</summary>
    public int Concurrency => options.Concurrency;
    public long PromptTokens => Interlocked.Read(ref promptTokens);
    public long CompletionTokens => Interlocked.Read(ref completionTokens);
    public long Requests => Interlocked.Read(ref requests);

    /// <summary>Sends one conversation; waits for a free slot first.</summary>
    /// <param name="topLogprobs">When set, the reply carries the first token's top candidates (RLAIF reads its preference from them).</param>
    public async Task<TeacherReply> AskAsync(IReadOnlyList<ChatMessage> messages, int? maxTokens = null, double? temperature = null,
        int? topLogprobs = null, CancellationToken cancel = default)
    {
        var chatOptions = new ChatCompletionOptions
        {
            Temperature = (float)(temperature ?? options.Temperature),
            MaxOutputTokenCount = maxTokens ?? options.MaxTokens,
        };
        if (topLogprobs is int k) { chatOptions.IncludeLogProbabilities = true; chatOptions.TopLogProbabilityCount = k; }
        await slots.WaitAsync(cancel);
        try
        {
            Interlocked.Increment(ref requests);
            ChatCompletion completion = (await client.CompleteChatAsync(messages, chatOptions, cancel)).Value;
            if (completion.Usage is { } usage)
            {
                Interlocked.Add(ref promptTokens, usage.InputTokenCount);
                Interlocked.Add(ref completionTokens, usage.OutputTokenCount);
            }
            string text = string.Concat(completion.Content.Where(p => p.Kind == ChatMessageContentPartKind.Text).Select(p => p.Text));
            var first = new Dictionary<string, double>();
            if (completion.ContentTokenLogProbabilities is { Count: > 0 } lp)
            {
                first[lp[0].Token] = lp[0].LogProbability;
                foreach (var alt in lp[0].TopLogProbabilities) first.TryAdd(alt.Token, alt.LogProbability);
            }
            return new TeacherReply(text, first);
        }
        catch (ClientResultException e) when (e.Status is 401 or 403)
        {
            throw new RlhfException($"{options.BaseUrl}: the teacher refused the API key (HTTP {e.Status}); set {options.ApiKeyVariable} to a valid key.");
        }
        catch (ClientResultException e) when (e.Status == 404)
        {
            throw new RlhfException($"{options.BaseUrl}: HTTP 404 — no chat endpoint there, or no model '{options.Model}' (check --base-url ends in /v1 and --teacher-model).");
        }
        catch (ClientResultException e) when (e.Status != 0)
        {
            throw new RlhfException($"{options.BaseUrl}: the teacher answered HTTP {e.Status} after {options.MaxRetries} retries: {e.Message}");
        }
        catch (Exception e) when (e is HttpRequestException or ClientResultException || (e is TaskCanceledException && !cancel.IsCancellationRequested))
        {
            throw new RlhfException($"{options.BaseUrl}: cannot reach the teacher after {options.MaxRetries} retries ({e.Message}).");
        }
        finally
        {
            slots.Release();
        }
    }

    /// <summary>"N requests, P prompt + C completion tokens": what a run paid for.</summary>
    public string UsageLine() => $"{Requests} requests, {PromptTokens} prompt + {CompletionTokens} completion tokens";
}
