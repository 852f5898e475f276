using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using RlhfSharp.Tests.Generation;

namespace RlhfSharp.Tests.Serve;

/// <summary>
/// Issue 15, legacy completions' <c>echo</c> with <c>logprobs</c>, as OpenAI's <c>/v1/completions</c> answers it: the
/// logprobs cover the prompt's tokens (the first one null) and then the completion's, with text offsets from 0; with
/// <c>max_tokens</c> 0 it scores a text without generating (lm-evaluation-harness's loglikelihood request).
/// </summary>
public class ServeEchoLogprobsTests(ServeFixture serve) : IClassFixture<ServeFixture>
{
    const string Prompt = "Once upon a time";

    JsonNode Complete(JsonObject body)
    {
        using var http = new HttpClient { BaseAddress = serve.BaseUri, Timeout = TimeSpan.FromSeconds(120) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServeFixture.ApiKey);
        using var response = http.PostAsync("completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")).Result;
        string text = response.Content.ReadAsStringAsync().Result;
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonNode.Parse(text)!;
    }

    static List<float?> Logprobs(JsonNode choice) => choice["logprobs"]!["token_logprobs"]!.AsArray().Select(x => x is null ? (float?)null : (float)x).ToList();

    [Fact]
    public void Echo_with_logprobs_scores_the_prompt_tokens_then_the_completion()
    {
        var ids = serve.Model.EncodePrompt(Prompt);
        var plain = Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 8, ["logprobs"] = 2 })["choices"]![0]!;
        var echoed = Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 8, ["logprobs"] = 2, ["echo"] = true })["choices"]![0]!;
        Assert.Equal(Prompt + (string)plain["text"]!, (string)echoed["text"]!);

        var lp = echoed["logprobs"]!;
        var tokens = lp["tokens"]!.AsArray().Select(t => (string)t!).ToList();
        int generated = plain["logprobs"]!["tokens"]!.AsArray().Count;
        Assert.Equal(ids.Length + generated, tokens.Count);
        Assert.Equal(ids.Select(id => serve.Model.Tokenizer.Decode([id], skipSpecial: false)), tokens.Take(ids.Length));
        var values = Logprobs(echoed);
        Assert.Null(values[0]); // nothing predicts the first token
        Assert.Null(lp["top_logprobs"]![0]);
        // The prompt's tokens: log-softmax of a teacher-forced forward pass (the test's own, one row at a time).
        var expected = PenalisedGreedy.ModelLogprobs(serve.Model.Model, [ids[0]], ids[1..]);
        for (int t = 1; t < ids.Length; t++) Assert.Equal(expected[t - 1], values[t]!.Value, 4);
        // The completion's are the ones a request without echo reports.
        var alone = Logprobs(plain);
        for (int i = 0; i < generated; i++) Assert.Equal(alone[i]!.Value, values[ids.Length + i]!.Value, 4);
        // Each position's alternatives hold the token itself, at most k + 1 entries.
        for (int t = 1; t < tokens.Count; t++)
        {
            var top = lp["top_logprobs"]![t]!.AsObject();
            Assert.InRange(top.Count, 1, 3);
            Assert.Equal(values[t]!.Value, (float)top[tokens[t]]!, 5);
        }
        // Text offsets count from the start of the echoed prompt.
        var offsets = lp["text_offset"]!.AsArray().Select(o => (int)o!).ToList();
        Assert.Equal(0, offsets[0]);
        for (int t = 1; t < tokens.Count; t++) Assert.Equal(offsets[t - 1] + tokens[t - 1].Length, offsets[t]);
    }

    [Fact]
    public void Max_tokens_0_with_echo_scores_a_text_as_generation_scored_it()
    {
        // Generate with the KV cache, then score prompt + completion in one pass: the two paths must agree.
        var ids = serve.Model.EncodePrompt(Prompt);
        var plain = Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 8, ["logprobs"] = 0 })["choices"]![0]!;
        var generatedLogprobs = Logprobs(plain);
        var generatedIds = PenalisedGreedy.Tokens(serve.Model.Model, ids, generatedLogprobs.Count, 0, 0, serve.Model.Tokenizer.EosIds.ToHashSet());
        int[] all = [.. ids, .. generatedIds];
        var scored = Complete(new JsonObject
        {
            ["prompt"] = new JsonArray(all.Select(i => (JsonNode)i).ToArray()), ["max_tokens"] = 0, ["echo"] = true, ["logprobs"] = 1,
        });
        var choice = scored["choices"]![0]!;
        Assert.Equal(serve.Model.Tokenizer.Decode(all, skipSpecial: false), (string)choice["text"]!);
        Assert.Equal("length", (string)choice["finish_reason"]!);
        Assert.Equal(0, (int)scored["usage"]!["completion_tokens"]!);
        Assert.Equal(all.Length, (int)scored["usage"]!["prompt_tokens"]!);
        var values = Logprobs(choice);
        Assert.Equal(all.Length, values.Count);
        for (int i = 0; i < generatedLogprobs.Count; i++) Assert.Equal(generatedLogprobs[i]!.Value, values[ids.Length + i]!.Value, 3);
        // Without echo, max_tokens 0 is still refused (nothing would come back).
        using var http = new HttpClient { BaseAddress = serve.BaseUri };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServeFixture.ApiKey);
        var refused = http.PostAsync("completions", new StringContent(new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 0 }.ToJsonString(), Encoding.UTF8, "application/json")).Result;
        Assert.Equal(400, (int)refused.StatusCode);
    }

    [Fact]
    public void Streamed_echo_with_logprobs_sends_the_prompt_with_its_scores_first()
    {
        var ids = serve.Model.EncodePrompt(Prompt);
        using var http = new HttpClient { BaseAddress = serve.BaseUri, Timeout = TimeSpan.FromSeconds(120) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServeFixture.ApiKey);
        var body = new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 6, ["echo"] = true, ["logprobs"] = 1, ["stream"] = true };
        string events = http.PostAsync("completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")).Result.Content.ReadAsStringAsync().Result;
        var chunks = events.Split('\n').Where(l => l.StartsWith("data: {")).Select(l => JsonNode.Parse(l[6..])!["choices"]![0]!).ToList();
        var first = chunks[0];
        Assert.Equal(Prompt, (string)first["text"]!);
        Assert.Equal(ids.Length, first["logprobs"]!["tokens"]!.AsArray().Count);
        Assert.Null(first["logprobs"]!["token_logprobs"]![0]);
        Assert.Equal(0, (int)first["logprobs"]!["text_offset"]![0]!);
        var plain = Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 6 });
        Assert.Equal(Prompt + (string)plain["choices"]![0]!["text"]!, string.Concat(chunks.Select(c => (string?)c["text"])));
    }
}
