using System.Text.Json;
using System.Text.Json.Nodes;
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
    /// <summary>Prompt text (completions endpoint) or null.</summary>
    public string? Prompt { get; init; }
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    public double PresencePenalty { get; init; }
    public double FrequencyPenalty { get; init; }
    /// <summary>
    /// Null: no logprobs. Otherwise the number of alternatives per token: chat's <c>top_logprobs</c> (0–20, with
    /// <c>logprobs: true</c>) or the legacy completions' <c>logprobs</c> (0–5).
    /// </summary>
    public int? TopLogprobs { get; init; }
    public long? MaxTokens { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    public long N { get; init; } = 1;
    public ulong Seed { get; init; }
    public bool Stream { get; init; }
    /// <summary><c>stream_options.include_usage</c>: a last chunk carries the token counts.</summary>
    public bool IncludeUsage { get; init; }

    /// <summary>Reads a request body; <paramref name="chat"/> selects which of messages/prompt is required.</summary>
    public static OpenAiRequest Parse(JsonNode? body, bool chat)
    {
        if (body is not JsonObject o) throw new OpenAiError(400, "the request body must be a JSON object.");
        var request = new OpenAiRequest
        {
            Model = String(o, "model"),
            Temperature = Number(o, "temperature", 0, 2) ?? 1.0,
            TopP = Number(o, "top_p", double.Epsilon, 1) ?? 1.0,
            PresencePenalty = Number(o, "presence_penalty", -2, 2) ?? 0,
            FrequencyPenalty = Number(o, "frequency_penalty", -2, 2) ?? 0,
            TopLogprobs = chat ? ChatLogprobs(o) : (int?)Integer(o, "logprobs", 0, max: 5),
            MaxTokens = Integer(o, "max_completion_tokens", 1) ?? Integer(o, "max_tokens", 1),
            Stop = Stops(o),
            N = Integer(o, "n", 1) ?? 1,
            Seed = (ulong)(Integer(o, "seed", long.MinValue) ?? 0),
            Stream = Bool(o, "stream") ?? false,
            IncludeUsage = o["stream_options"] is JsonObject so && Bool(so, "include_usage") == true,
        };
        return chat ? request with { Messages = ReadMessages(o) } : request with { Prompt = ReadPrompt(o) };
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

    static string ReadPrompt(JsonObject o) => o["prompt"] switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonArray { Count: 1 } a when a[0] is JsonValue v && v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw OpenAiError.Invalid("prompt", "'prompt' must be a string (or an array of one string)."),
    };

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
