using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using RlhfSharp.Rewards;

namespace RlhfSharp.Tests.Rewards;

/// <summary>The HTTP reward against a real listener on loopback.</summary>
public sealed class HttpRewardTests : IDisposable
{
    readonly HttpListener listener = new();
    readonly string url;
    int calls;

    public HttpRewardTests()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        url = $"http://127.0.0.1:{port}/score/";
        listener.Prefixes.Add(url);
        listener.Start();
    }

    public void Dispose() => listener.Close();

    /// <summary>Answers requests: 503 for the first <paramref name="failures"/>, then each completion's length as its score.</summary>
    void Serve(int requests, int failures = 0, string token = "secret") => Task.Run(() =>
    {
        for (int i = 0; i < requests; i++)
        {
            var ctx = listener.GetContext();
            int n = Interlocked.Increment(ref calls);
            string answer;
            if (ctx.Request.Headers["Authorization"] != $"Bearer {token}") { ctx.Response.StatusCode = 401; answer = "{}"; }
            else if (n <= failures) { ctx.Response.StatusCode = 503; answer = "{}"; }
            else
            {
                var body = JsonNode.Parse(new StreamReader(ctx.Request.InputStream).ReadToEnd())!;
                var scores = body["completions"]!.AsArray().Select(c => (JsonNode)(double)c!.GetValue<string>().Length).ToArray();
                answer = new JsonObject { ["scores"] = new JsonArray(scores) }.ToJsonString();
            }
            var bytes = Encoding.UTF8.GetBytes(answer);
            ctx.Response.ContentType = "application/json";
            ctx.Response.OutputStream.Write(bytes);
            ctx.Response.Close();
        }
    });

    [Fact]
    public void Scores_come_back_in_order_with_the_bearer_token()
    {
        Serve(1);
        using var reward = new HttpReward(new Uri(url), "secret");
        Assert.Equal(new[] { 3.0, 5.0 }, reward.Score(["p", "q"], ["abc", "hello"]));
    }

    [Fact]
    public void A_server_error_is_retried_and_then_answers()
    {
        Serve(3, failures: 2);
        using var reward = new HttpReward(new Uri(url), "secret", retries: 3);
        Assert.Equal(new[] { 2.0 }, reward.Score(["p"], ["ab"]));
        Assert.Equal(3, calls);
    }

    [Fact]
    public void A_wrong_token_is_a_clear_error_without_retries()
    {
        Serve(1);
        using var reward = new HttpReward(new Uri(url), "wrong");
        var e = Assert.Throws<RlhfException>(() => reward.Score(["p"], ["a"]));
        Assert.Contains("bearer token", e.Message);
        Assert.Equal(1, calls);
    }

    [Fact]
    public void An_endpoint_that_is_down_names_itself_after_the_retries()
    {
        listener.Close();
        using var reward = new HttpReward(new Uri(url), "secret", timeout: TimeSpan.FromSeconds(2), retries: 1);
        var e = Assert.Throws<RlhfException>(() => reward.Score(["p"], ["a"]));
        Assert.Contains(url, e.Message);
        Assert.Contains("2 attempts", e.Message);
    }
}
