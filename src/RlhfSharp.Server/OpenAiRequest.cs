using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Generation;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Server;

/// <summary>
/// The fields of a <c>/v1/chat/completions</c> or <c>/v1/completions</c> body this server honours, read and
/// checked by hand so each mistake becomes a 400 naming its field.
/// </summary>
public sealed record OpenAiRequest
{
    public string? Model { get; init; }
    /// <summary>Chat messages (chat endpoint) or null.</summary>
    public IReadOnlyList<ChatMessage>? Messages { get; init; }
    /// <summary>The prompts of the completions endpoint (a string, token ids, or an array of either), or null.</summary>
    public IReadOnlyList<PromptInput>? Prompts { get; init; }
    /// <summary>Completions' <c>echo</c>: the prompt's text comes back in front of each completion.</summary>
    public bool Echo { get; init; }
    /// <summary>
    /// temperature, top_p, presence_penalty, frequency_penalty, logit_bias (token id → a number in −100…100 added to its
    /// logit before sampling; null when not given) and the logprobs asked for: null for none, otherwise the number of
    /// alternatives per token, chat's <c>top_logprobs</c> (0–20, with <c>logprobs: true</c>) or the legacy completions'
    /// <c>logprobs</c> (0–5).
    /// </summary>
    public SamplingOptions Sampling { get; init; } = new();
    public long? MaxTokens { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    public long N { get; init; } = 1;
    /// <summary>The request's seed; null (no <c>seed</c>) draws fresh randomness, as OpenAI does.</summary>
    public ulong? Seed { get; init; }
    public bool Stream { get; init; }
    /// <summary><c>stream_options.include_usage</c>: a last chunk carries the token counts.</summary>
    public bool IncludeUsage { get; init; }

    /// <summary>Reads a request body; <paramref name="chat"/> selects which of messages/prompt is required.</summary>
    public static OpenAiRequest Parse(JsonNode? body, bool chat)
    {
        if (body is not JsonObject o) throw new OpenAiError(400, "the request body must be a JSON object.");
        CheckFields(o, chat);
        var request = new OpenAiRequest
        {
            Model = String(o, "model"),
            Sampling = new SamplingOptions
            {
                Temperature = Number(o, "temperature", 0, 2) ?? 1.0,
                // top_p 0 keeps only the most likely token: greedy, as OpenAI treats it.
                TopP = Number(o, "top_p", 0, 1) ?? 1.0,
                PresencePenalty = Number(o, "presence_penalty", -2, 2) ?? 0,
                FrequencyPenalty = Number(o, "frequency_penalty", -2, 2) ?? 0,
                TopLogprobs = chat ? ChatLogprobs(o) : (int?)Integer(o, "logprobs", 0, max: 5),
                LogitBias = ReadLogitBias(o),
            },
            MaxTokens = Integer(o, "max_completion_tokens", 1) ?? Integer(o, "max_tokens", chat ? 1 : 0),
            Stop = Stops(o),
            N = Integer(o, "n", 1) ?? 1,
            Seed = Integer(o, "seed", long.MinValue) is long seed ? (ulong)seed : null,
            Stream = Bool(o, "stream") ?? false,
            IncludeUsage = o["stream_options"] is JsonObject so && Bool(so, "include_usage") == true,
        };
        if (chat) return request with { Messages = ReadMessages(o) };
        bool echo = Bool(o, "echo") ?? false;
        // max_tokens 0 with echo scores a text without generating (lm-evaluation-harness's loglikelihood requests do this);
        // without echo nothing would come back.
        if (request.MaxTokens == 0 && !echo) throw OpenAiError.Invalid("max_tokens", "'max_tokens' must be ≥ 1, got 0 (0 is for scoring a prompt with echo).");
        return request with { Prompts = ReadPrompts(o), Echo = echo };
    }

    /// <summary>The fields this server reads; <c>user</c> (an end-user id for abuse monitoring) is accepted and needs nothing.</summary>
    static readonly string[] Common = ["model", "temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "max_tokens", "stop", "n", "seed",
        "stream", "stream_options", "logit_bias", "user"];
    static readonly HashSet<string> ChatFields = [.. Common, "messages", "top_logprobs", "max_completion_tokens"];
    static readonly HashSet<string> CompletionFields = [.. Common, "prompt", "echo", "best_of"];

    /// <summary>
    /// Refuses what would otherwise be silently ignored (issue 15): OpenAI parameters this server does not implement
    /// (<c>tools</c>, <c>response_format</c>, <c>suffix</c>, <c>best_of</c> above <c>n</c>, …) and unknown fields, each a
    /// 400 naming the parameter, as OpenAI answers an unrecognized argument.
    /// </summary>
    static void CheckFields(JsonObject o, bool chat)
    {
        var known = chat ? ChatFields : CompletionFields;
        foreach (var (name, _) in o)
        {
            if (known.Contains(name)) continue;
            string endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
            string why = name switch
            {
                "tools" or "tool_choice" or "functions" or "function_call" or "parallel_tool_calls" => $"'{name}': tool and function calling is not supported by this server",
                "response_format" => "'response_format': structured output is not supported by this server",
                "suffix" => "'suffix': insertion is not supported by this server",
                "prompt" or "echo" or "best_of" => $"'{name}' belongs to /v1/completions",
                "messages" or "top_logprobs" or "max_completion_tokens" => $"'{name}' belongs to /v1/chat/completions",
                _ => $"Unrecognized request argument supplied: {OpenAiError.Echo(name)}",
            };
            throw OpenAiError.Invalid(name, $"{why} ({endpoint} takes: {string.Join(", ", known.Order(StringComparer.Ordinal))}).");
        }
        // best_of = n (or 1 with n = 1) generates exactly what is returned; more would need scoring candidates server-side.
        if (!chat && Integer(o, "best_of", 1) is long bestOf && bestOf != (Integer(o, "n", 1) ?? 1))
            throw OpenAiError.Invalid("best_of", $"best_of {bestOf} is not supported by this server: leave it out (or equal to n).");
    }

    static IReadOnlyDictionary<int, double>? ReadLogitBias(JsonObject o)
    {
        if (o["logit_bias"] is null) return null;
        if (o["logit_bias"] is not JsonObject map) throw OpenAiError.Invalid("logit_bias", "'logit_bias' must be an object mapping token ids to a bias between -100 and 100.");
        var result = new Dictionary<int, double>();
        foreach (var (key, value) in map)
        {
            if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id))
                throw OpenAiError.Invalid("logit_bias", $"logit_bias: '{OpenAiError.Echo(key)}' is not a token id (a non-negative integer as a string).");
            if (value is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !(v.GetValue<double>() is >= -100 and <= 100))
                throw OpenAiError.Invalid("logit_bias", $"logit_bias[\"{id}\"] must be a number between -100 and 100.");
            result[id] = v.GetValue<double>();
        }
        return result;
    }

    static int? ChatLogprobs(JsonObject o)
    {
        bool logprobs = Bool(o, "logprobs") ?? false;
        long? top = Integer(o, "top_logprobs", 0, max: 20);
        if (top is not null && !logprobs) throw OpenAiError.Invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true.");
        return logprobs ? (int)(top ?? 0) : null;
    }

    static IReadOnlyList<ChatMessage> ReadMessages(JsonObject o)
    {
        if (o["messages"] is not JsonArray list || list.Count == 0) throw OpenAiError.Invalid("messages", "'messages' must be a non-empty array.");
        var result = new List<ChatMessage>();
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is not JsonObject m) throw OpenAiError.Invalid($"messages[{i}]", $"messages[{i}] must be an object.");
            string role = String(m, "role") ?? throw OpenAiError.Invalid($"messages[{i}].role", $"messages[{i}] has no 'role'.");
            if (role is not ("system" or "developer" or "user" or "assistant"))
                throw OpenAiError.Invalid($"messages[{i}].role", $"messages[{i}].role '{OpenAiError.Echo(role)}' is not one of system, developer, user, assistant.");
            result.Add(new ChatMessage(role == "developer" ? "system" : role, Content(m["content"], i)));
        }
        return result;
    }

    /// <summary>Content is a string or an array of parts; only text parts are understood.</summary>
    static string Content(JsonNode? content, int i) => content switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonArray parts => string.Concat(parts.Select(p => p is JsonObject part && (string?)part["type"] == "text" && part["text"] is JsonValue t && t.GetValueKind() == JsonValueKind.String
            ? t.GetValue<string>()
            : throw OpenAiError.Invalid($"messages[{i}].content", $"messages[{i}].content: only text parts are supported."))),
        _ => throw OpenAiError.Invalid($"messages[{i}].content", $"messages[{i}].content must be a string or an array of text parts."),
    };

    /// <summary>OpenAI's four forms: a string, an array of strings, an array of token ids, an array of arrays of token ids.</summary>
    static IReadOnlyList<PromptInput> ReadPrompts(JsonObject o)
    {
        const string Shape = "'prompt' must be a string, an array of strings, an array of token ids, or an array of arrays of token ids.";
        static bool IsString(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String;
        static int[]? Ids(JsonArray a) => a.All(x => x is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out _))
            ? a.Select(x => x!.GetValue<int>()).ToArray() : null;
        switch (o["prompt"])
        {
            case JsonValue v when IsString(v): return [new PromptInput(v.GetValue<string>(), null)];
            case JsonArray { Count: > 0 } a when a.All(IsString): return a.Select(x => new PromptInput(x!.GetValue<string>(), null)).ToList();
            case JsonArray { Count: > 0 } a when Ids(a) is int[] ids: return [new PromptInput(null, ids)];
            case JsonArray { Count: > 0 } a when a.All(x => x is JsonArray { Count: > 0 } inner && Ids(inner) is not null):
                return a.Select(x => new PromptInput(null, Ids(x!.AsArray()))).ToList();
            default: throw OpenAiError.Invalid("prompt", Shape);
        }
    }

    static IReadOnlyList<string> Stops(JsonObject o) => o["stop"] switch
    {
        null => [],
        JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
        JsonArray a when a.Count <= 4 && a.All(x => x is JsonValue s && s.GetValueKind() == JsonValueKind.String) => a.Select(x => x!.GetValue<string>()).ToList(),
        _ => throw OpenAiError.Invalid("stop", "'stop' must be a string or an array of up to 4 strings."),
    };

    static string? String(JsonObject o, string name) => o[name] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw OpenAiError.Invalid(name, $"'{name}' must be a string."),
    };

    static bool? Bool(JsonObject o, string name) => o[name] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw OpenAiError.Invalid(name, $"'{name}' must be true or false."),
    };

    static double? Number(JsonObject o, string name, double min, double max)
    {
        if (o[name] is null) return null;
        if (o[name] is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) throw OpenAiError.Invalid(name, $"'{name}' must be a number.");
        double x = v.GetValue<double>();
        if (!(x >= min && x <= max)) throw OpenAiError.Invalid(name, $"'{name}' must be between {(min == double.Epsilon ? 0 : min)} and {max}, got {x}.");
        return x;
    }

    static long? Integer(JsonObject o, string name, long min, long max = long.MaxValue)
    {
        if (o[name] is null) return null;
        if (o[name] is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue<long>(out long x))
            throw OpenAiError.Invalid(name, $"'{name}' must be an integer.");
        if (x < min) throw OpenAiError.Invalid(name, $"'{name}' must be ≥ {min}, got {x}.");
        if (x > max) throw OpenAiError.Invalid(name, $"'{name}' must be ≤ {max}, got {x}.");
        return x;
    }
}

/// <summary>One prompt of a completions request: its text, or its token ids (used exactly as given).</summary>
public sealed record PromptInput(string? Text, int[]? Ids);
