using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Server;

namespace RlhfSharp.Bench;

/// <summary>
/// Serving throughput and time to first token: the real <c>rlhf serve</c> in-process on loopback with stories260K,
/// <c>streams</c> clients each streaming <c>requests</c> completions of <c>new</c> tokens back to back over HTTP.
/// Batching works when tokens/s grows with the number of concurrent streams.
/// </summary>
public static class ServeWorkload
{
    public static async Task Run(Dictionary<string, object> r, int streams, int requests, int newTokens)
    {
        using var model = PretrainedModel.Load("stories260k");
        await using var server = await OpenAiServer.StartAsync(model, new ServerOptions { Urls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(server.Urls[0].TrimEnd('/') + "/v1/"), Timeout = TimeSpan.FromMinutes(5) };
        await Stream(http, 4); // warm-up: JIT, first batch

        var ttft = new List<double>();
        long tokens = 0;
        int batchesBefore = server.Batcher.BatchesRun;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, streams).Select(async _ =>
        {
            for (int i = 0; i < requests; i++)
            {
                var (first, count) = await Stream(http, newTokens);
                lock (ttft) { ttft.Add(first); tokens += count; }
            }
        }));
        double seconds = clock.Elapsed.TotalSeconds;
        ttft.Sort();
        r["streams"] = streams; r["requests"] = streams * requests; r["new"] = newTokens;
        r["seconds"] = seconds;
        r["tokens_per_s"] = tokens / seconds;
        r["ttft_p50_ms"] = 1000 * ttft[ttft.Count / 2];
        r["ttft_p95_ms"] = 1000 * ttft[Math.Min(ttft.Count - 1, (int)Math.Ceiling(0.95 * ttft.Count) - 1)];
        r["batches"] = server.Batcher.BatchesRun - batchesBefore;
    }

    /// <summary>One streamed completion: seconds to the first text chunk, and completion tokens from the usage chunk.</summary>
    static async Task<(double FirstToken, long Tokens)> Stream(HttpClient http, int maxTokens)
    {
        var body = new JsonObject
        {
            ["model"] = "stories260k", ["prompt"] = "Once upon a time", ["max_tokens"] = maxTokens, ["temperature"] = 1.0,
            ["stream"] = true, ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "completions") { Content = JsonContent.Create(body) };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double first = double.NaN;
        long tokens = 0;
        while (await reader.ReadLineAsync() is string line)
        {
            if (!line.StartsWith("data: ") || line == "data: [DONE]") continue;
            var chunk = JsonNode.Parse(line[6..])!;
            if (double.IsNaN(first) && chunk["choices"] is JsonArray { Count: > 0 } choices && choices[0]?["text"]?.GetValue<string>() is { Length: > 0 })
                first = clock.Elapsed.TotalSeconds;
            if (chunk["usage"] is JsonObject usage) tokens = usage["completion_tokens"]!.GetValue<long>();
        }
        return (first, tokens);
    }
}
