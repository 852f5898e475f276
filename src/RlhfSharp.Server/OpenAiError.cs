using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace RlhfSharp.Server;

/// <summary>
/// A request the server refuses, answered in OpenAI's error shape
/// <c>{"error":{"message","type","param","code"}}</c> so SDKs surface the message.
/// </summary>
public sealed class OpenAiError(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    /// <summary>The JSON body OpenAI sends for this error.</summary>
    public JsonObject ToJson() => new()
    {
        ["error"] = new JsonObject { ["message"] = Message, ["type"] = Type, ["param"] = Param, ["code"] = Code },
    };

    /// <summary>Writes the status and body (only if the response has not started, e.g. mid-stream).</summary>
    public async Task WriteAsync(HttpContext context)
    {
        if (context.Response.HasStarted) return;
        context.Response.StatusCode = Status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(ToJson().ToJsonString(), context.RequestAborted);
    }

    /// <summary>A client's string quoted in a message, cut to 64 characters so an answer never grows with what was sent.</summary>
    public static string Echo(string text) => text.Length <= 64 ? text : text[..64] + $"… ({text.Length} characters)";

    /// <summary>400 for a field with the wrong type or value.</summary>
    public static OpenAiError Invalid(string param, string message) => new(400, message, param: param, code: "invalid_value");
}
