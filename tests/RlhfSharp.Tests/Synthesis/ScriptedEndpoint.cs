using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace RlhfSharp.Tests.Synthesis;

/// <summary>
/// A loopback HTTP endpoint that answers OpenAI chat-completion requests from a script: a status code and reply per
/// request, so retries, resume and error messages can be tested against exact request counts. The model behaviour
/// itself is tested against the real <c>rlhf serve</c> (<see cref="Serve.ServeFixture"/>).
/// </summary>
public sealed class ScriptedEndpoint : IDisposable
{
    /// <summary>One scripted answer: HTTP status, reply text, and the first token's top log-probabilities.</summary>
    public sealed record Answer(int Status, string Text = "", IReadOnlyDictionary<string, double>? FirstToken = null);

    readonly HttpListener listener = new();
    readonly Func<int, JsonObject, Answer> script;
    readonly bool concurrent;
    int count;

    public Uri BaseUrl { get; }
    public int Requests => Volatile.Read(ref count);
    public List<JsonObject> Bodies { get; } = new();

    /// <param name="script">The answer to the n-th request (0-based) given its JSON body.</param>
    /// <param name="concurrent">Answer each request on its own task (requests overlap), instead of one after another.</param>
    public ScriptedEndpoint(Func<int, JsonObject, Answer> script, bool concurrent = false)
    {
        this.script = script;
        this.concurrent = concurrent;
        int port = FreePort();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        BaseUrl = new Uri($"http://127.0.0.1:{port}/v1/");
        _ = Task.Run(Loop);
    }

    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    async Task Loop()
    {
        while (listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await listener.GetContextAsync(); } catch (Exception) { return; }
            if (concurrent) _ = Task.Run(() => Respond(ctx));
            else await Respond(ctx);
        }
    }

    async Task Respond(HttpListenerContext ctx)
    {
        string body = await new StreamReader(ctx.Request.InputStream).ReadToEndAsync();
        var json = JsonNode.Parse(body) as JsonObject ?? new JsonObject();
        int n;
        lock (Bodies) { Bodies.Add(json); n = count++; }
        var answer = script(n, json);
        ctx.Response.StatusCode = answer.Status;
        string text;
        if (answer.Status == 200)
        {
            var message = new JsonObject { ["role"] = "assistant", ["content"] = answer.Text };
            var choice = new JsonObject { ["index"] = 0, ["message"] = message, ["finish_reason"] = "stop" };
            if (answer.FirstToken is { } first)
            {
                var top = new JsonArray(first.Select(kv => (JsonNode)new JsonObject { ["token"] = kv.Key, ["logprob"] = kv.Value, ["bytes"] = null }).ToArray());
                var best = first.MaxBy(kv => kv.Value);
                choice["logprobs"] = new JsonObject { ["content"] = new JsonArray(new JsonObject { ["token"] = best.Key, ["logprob"] = best.Value, ["bytes"] = null, ["top_logprobs"] = top }) };
            }
            text = new JsonObject
            {
                ["id"] = $"chatcmpl-{n}", ["object"] = "chat.completion", ["created"] = 0, ["model"] = json["model"]?.GetValue<string>(),
                ["choices"] = new JsonArray(choice),
                ["usage"] = new JsonObject { ["prompt_tokens"] = 10, ["completion_tokens"] = 5, ["total_tokens"] = 15 },
            }.ToJsonString();
        }
        else
        {
            if (answer.Status == 429) ctx.Response.AddHeader("Retry-After", "0");
            text = new JsonObject { ["error"] = new JsonObject { ["message"] = $"scripted {answer.Status}", ["type"] = "scripted" } }.ToJsonString();
        }
        var bytes = Encoding.UTF8.GetBytes(text);
        ctx.Response.ContentType = "application/json";
        await ctx.Response.OutputStream.WriteAsync(bytes);
        ctx.Response.Close();
    }

    public void Dispose() { listener.Stop(); listener.Close(); }
}
