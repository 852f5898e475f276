using System.ClientModel;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Models;
using RlhfSharp.Generation;
using RlhfSharp.Server;

namespace RlhfSharp.Tests.Serve;

/// <summary>
/// Issue 15, <c>rlhf serve</c> as a drop-in for the OpenAI API: fresh randomness without a seed, models.retrieve, unsupported
/// parameters refused by name, logit_bias, echo, prompt arrays, top_p 0, max_tokens left out, and --urls without a scheme.
/// </summary>
public class ServeOpenAiCompatibilityTests(ServeFixture serve) : IClassFixture<ServeFixture>
{
    const string Prompt = "Once upon a time";

    HttpClient Http()
    {
        var http = new HttpClient { BaseAddress = serve.BaseUri, Timeout = TimeSpan.FromSeconds(120) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServeFixture.ApiKey);
        return http;
    }

    (int Status, JsonNode Body) Post(string route, JsonObject body)
    {
        using var http = Http();
        using var response = http.PostAsync(route, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")).Result;
        string text = response.Content.ReadAsStringAsync().Result;
        return ((int)response.StatusCode, JsonNode.Parse(text)!);
    }

    JsonNode Complete(JsonObject body)
    {
        var (status, json) = Post("completions", body);
        Assert.True(status == 200, json.ToJsonString());
        return json;
    }

    static string Text(JsonNode response, int choice = 0) => (string)response["choices"]![choice]!["text"]!;

    [Fact]
    public void Identical_unseeded_requests_at_temperature_1_differ_and_a_seed_repeats()
    {
        JsonObject Body(long? seed)
        {
            var body = new JsonObject { ["prompt"] = Prompt, ["temperature"] = 1.0, ["max_tokens"] = 24 };
            if (seed is long s) body["seed"] = s;
            return body;
        }
        var unseeded = Enumerable.Range(0, 3).Select(_ => Text(Complete(Body(null)))).ToList();
        Assert.True(unseeded.Distinct().Count() > 1, "three unseeded samples were identical: " + unseeded[0]);
        Assert.Equal(Text(Complete(Body(7))), Text(Complete(Body(7))));
    }

    [Fact]
    public void Models_retrieve_in_the_sdk_gives_the_served_model_and_an_unknown_id_is_404_model_not_found()
    {
        var client = new OpenAIModelClient(new ApiKeyCredential(ServeFixture.ApiKey), new OpenAIClientOptions { Endpoint = serve.BaseUri });
        var model = client.GetModel("stories260k").Value;
        Assert.Equal("stories260k", model.Id);
        Assert.Equal("rlhfsharp", model.OwnedBy);
        var e = Assert.Throws<ClientResultException>(() => client.GetModel("gpt-4o"));
        Assert.Equal(404, e.Status);
        using var http = Http();
        var error = JsonNode.Parse(http.GetAsync("models/gpt-4o").Result.Content.ReadAsStringAsync().Result)!["error"]!;
        Assert.Equal("model_not_found", (string?)error["code"]);
    }

    [Theory]
    [InlineData("chat/completions", "tools", "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]")]
    [InlineData("chat/completions", "response_format", "{\"type\":\"json_object\"}")]
    [InlineData("chat/completions", "temprature", "1")]
    [InlineData("chat/completions", "echo", "true")]
    [InlineData("completions", "suffix", "\"the end\"")]
    [InlineData("completions", "best_of", "3")]
    [InlineData("completions", "functions", "[]")]
    public void Unsupported_and_unknown_parameters_are_a_400_naming_the_parameter(string route, string name, string value)
    {
        var body = route == "completions"
            ? new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 2 }
            : new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Prompt }), ["max_tokens"] = 2 };
        body[name] = JsonNode.Parse(value);
        var (status, json) = Post(route, body);
        Assert.Equal(400, status);
        Assert.Equal(name, (string?)json["error"]!["param"]);
        Assert.Contains(name, (string?)json["error"]!["message"]);
    }

    [Fact]
    public void Logit_bias_of_100_forces_a_token_and_of_minus_100_bans_the_greedy_one()
    {
        var tokenizer = serve.Model.Tokenizer;
        int forced = tokenizer.Encode(" ball", addBos: false)[^1];
        var json = Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 5, ["logit_bias"] = new JsonObject { [forced.ToString()] = 100 } });
        Assert.Equal(tokenizer.Decode(Enumerable.Repeat(forced, 5).ToList()), Text(json));

        // The model's own two most likely first tokens, from one greedy step with top-2 logprobs.
        var ids = serve.Model.EncodePrompt(Prompt);
        SampledToken? first = null;
        new Sampler(serve.Model.Model, tokenizer).Generate([ids], new SamplingOptions { Temperature = 0, MaxNewTokens = 1, TopLogprobs = 2 }, onSampled: t => first ??= t);
        int best = first!.Top[0].Id, second = first.Top[1].Id;
        var banned = Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 1, ["logit_bias"] = new JsonObject { [best.ToString()] = -100 } });
        Assert.Equal(tokenizer.Decode([second]), Text(banned));
        Assert.Equal(400, Post("completions", new JsonObject { ["prompt"] = Prompt, ["logit_bias"] = new JsonObject { ["5"] = 101 } }).Status);
        Assert.Equal("logit_bias", (string?)Post("completions", new JsonObject { ["prompt"] = Prompt, ["logit_bias"] = new JsonObject { ["99999"] = 1 } }).Body["error"]!["param"]);
    }

    [Fact]
    public void Echo_puts_the_prompt_before_the_completion_streamed_or_not()
    {
        var plain = Text(Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 8 }));
        Assert.Equal(Prompt + plain, Text(Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 8, ["echo"] = true })));
        using var http = Http();
        var body = new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 8, ["echo"] = true, ["stream"] = true };
        string events = http.PostAsync("completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")).Result.Content.ReadAsStringAsync().Result;
        var streamed = string.Concat(events.Split('\n').Where(l => l.StartsWith("data: {")).Select(l => (string?)JsonNode.Parse(l[6..])!["choices"]![0]!["text"]));
        Assert.Equal(Prompt + plain, streamed);
    }

    [Fact]
    public void A_prompt_array_gives_each_prompts_choices_in_order_and_token_id_prompts_work()
    {
        string[] prompts = [Prompt, "Lily went to the park"];
        var alone = prompts.Select(p => Text(Complete(new JsonObject { ["prompt"] = p, ["temperature"] = 0, ["max_tokens"] = 6 }))).ToList();
        var both = Complete(new JsonObject { ["prompt"] = new JsonArray(prompts.Select(p => (JsonNode)p).ToArray()), ["temperature"] = 0, ["max_tokens"] = 6, ["n"] = 2 });
        Assert.Equal(4, both["choices"]!.AsArray().Count);
        Assert.Equal([alone[0], alone[0], alone[1], alone[1]], Enumerable.Range(0, 4).Select(i => Text(both, i)));
        Assert.Equal(Enumerable.Range(0, 4), both["choices"]!.AsArray().Select(c => (int)c!["index"]!));
        int promptTokens = prompts.Sum(p => serve.Model.EncodePrompt(p).Length);
        Assert.Equal(promptTokens, (int)both["usage"]!["prompt_tokens"]!);
        var ids = serve.Model.EncodePrompt(Prompt);
        var byIds = Complete(new JsonObject { ["prompt"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()), ["temperature"] = 0, ["max_tokens"] = 6 });
        Assert.Equal(alone[0], Text(byIds));
    }

    [Fact]
    public void Top_p_0_is_greedy()
    {
        var greedy = Text(Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["max_tokens"] = 16 }));
        Assert.Equal(greedy, Text(Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 1, ["top_p"] = 0, ["max_tokens"] = 16 })));
    }

    [Fact]
    public void Without_max_tokens_a_reply_runs_to_the_end_of_the_context_and_says_length()
    {
        // EOS banned, so only the context can end the reply: 512 positions minus the prompt (it was cut at 128 before).
        var bias = new JsonObject();
        foreach (var eos in serve.Model.Tokenizer.EosIds) bias[eos.ToString()] = -100;
        var json = Complete(new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["logit_bias"] = bias });
        int prompt = serve.Model.EncodePrompt(Prompt).Length;
        Assert.Equal(serve.Model.Model.Config.MaxPositions - prompt, (int)json["usage"]!["completion_tokens"]!);
        Assert.Equal("length", (string?)json["choices"]![0]!["finish_reason"]);
    }

    [Fact]
    public async Task Without_max_tokens_the_servers_cap_bounds_the_reply()
    {
        await using var capped = await OpenAiServer.StartAsync(serve.Model, new ServerOptions { Urls = "http://127.0.0.1:0", MaxTokensCap = 20 });
        using var http = new HttpClient { BaseAddress = new Uri(capped.Urls[0].TrimEnd('/') + "/v1/") };
        var bias = new JsonObject();
        foreach (var eos in serve.Model.Tokenizer.EosIds) bias[eos.ToString()] = -100;
        var body = new JsonObject { ["prompt"] = Prompt, ["temperature"] = 0, ["logit_bias"] = bias };
        var json = JsonNode.Parse(await (await http.PostAsync("completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"))).Content.ReadAsStringAsync())!;
        Assert.Equal(20, (int)json["usage"]!["completion_tokens"]!);
        Assert.Equal("length", (string?)json["choices"]![0]!["finish_reason"]);
    }

    [Theory]
    [InlineData("127.0.0.1:18081", "http://127.0.0.1:18081")]
    [InlineData("localhost:8000", "http://localhost:8000")]
    public async Task Urls_without_a_scheme_are_refused_with_the_address_to_write(string urls, string suggestion)
    {
        var e = await Assert.ThrowsAsync<RlhfException>(() => OpenAiServer.StartAsync(serve.Model, new ServerOptions { Urls = urls }));
        Assert.Contains(suggestion, e.Message);
        Assert.Contains("--urls", e.Message);
    }
}
