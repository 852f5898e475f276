using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Rewards;

/// <summary>
/// A reward served over HTTP: POST <c>{"prompts": [...], "completions": [...]}</c>, answer <c>{"scores": [...]}</c>
/// with one number per completion. Bearer-token auth, a timeout per attempt, retries with backoff on network errors
/// and 5xx answers, and an error that names the endpoint and what went wrong when it stays down.
/// </summary>
public sealed class HttpReward : IRewardFunction, IDisposable
{
    readonly HttpClient http;
    readonly Uri endpoint;
    readonly int retries;

    public string Name { get; }

    /// <param name="endpoint">The URL to POST to.</param>
    /// <param name="bearerToken">Sent as <c>Authorization: Bearer …</c> when given.</param>
    /// <param name="timeout">Per attempt (default 30 s).</param>
    /// <param name="retries">Further attempts after the first on a network error, a timeout or a 5xx (default 3).</param>
    public HttpReward(Uri endpoint, string? bearerToken = null, TimeSpan? timeout = null, int retries = 3, string name = "http", HttpMessageHandler? handler = null)
    {
        this.endpoint = endpoint;
        this.retries = retries;
        Name = name;
        http = handler is null ? new HttpClient() : new HttpClient(handler);
        http.Timeout = timeout ?? TimeSpan.FromSeconds(30);
        if (bearerToken is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearerToken);
    }

    public double[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        Check.SameCount(prompts, completions);
        var body = new JsonObject
        {
            ["prompts"] = new JsonArray(prompts.Select(p => (JsonNode)p!).ToArray()),
            ["completions"] = new JsonArray(completions.Select(c => (JsonNode)c!).ToArray()),
        };
        string problem = "";
        for (int attempt = 0; attempt <= retries; attempt++)
        {
            if (attempt > 0) Thread.Sleep(TimeSpan.FromMilliseconds(200 * (1 << Math.Min(attempt - 1, 5))));
            try
            {
                using var response = http.PostAsync(endpoint, JsonContent.Create(body)).GetAwaiter().GetResult();
                string text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                if ((int)response.StatusCode >= 500) { problem = $"HTTP {(int)response.StatusCode}"; continue; }
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                    throw new RlhfException($"reward endpoint {endpoint} refused the request (HTTP {(int)response.StatusCode}): check the bearer token.");
                if (!response.IsSuccessStatusCode)
                    throw new RlhfException($"reward endpoint {endpoint} answered HTTP {(int)response.StatusCode}: {Trim(text)}");
                return Parse(text, completions.Count);
            }
            catch (HttpRequestException e) { problem = e.Message; }
            catch (TaskCanceledException) { problem = $"no answer within {http.Timeout.TotalSeconds:0.#} s"; }
        }
        throw new RlhfException($"reward endpoint {endpoint} is not answering after {retries + 1} attempts ({problem}).");
    }

    double[] Parse(string text, int expected)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(text); }
        catch (JsonException e) { throw new RlhfException($"reward endpoint {endpoint} answered invalid JSON ({e.Message})."); }
        if (node?["scores"] is not JsonArray scores)
            throw new RlhfException($"reward endpoint {endpoint}: the answer has no 'scores' array: {Trim(text)}");
        if (scores.Count != expected)
            throw new RlhfException($"reward endpoint {endpoint}: {scores.Count} scores for {expected} completions.");
        return scores.Select((s, i) => s is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d)
            ? d : throw new RlhfException($"reward endpoint {endpoint}: scores[{i}] is not a finite number.")).ToArray();
    }

    static string Trim(string s) => s.Length > 200 ? s[..200] + "…" : s;

    public void Dispose() => http.Dispose();
}
