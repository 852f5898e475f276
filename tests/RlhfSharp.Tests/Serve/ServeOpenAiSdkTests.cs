using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Tokenization;
using ChatMessage = OpenAI.Chat.ChatMessage;

namespace RlhfSharp.Tests.Serve;

/// <summary>The server as the official OpenAI .NET SDK (and raw HTTP, where the SDK has no knob) sees it.</summary>
public class ServeOpenAiSdkTests(ServeFixture serve) : IClassFixture<ServeFixture>
{
    const string Prompt = "Once upon a time";

    ChatClient Chat(string key = ServeFixture.ApiKey) =>
        new("stories260k", new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = serve.BaseUri, NetworkTimeout = TimeSpan.FromSeconds(60) });

    HttpClient Http()
    {
        var http = new HttpClient { BaseAddress = serve.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServeFixture.ApiKey);
        return http;
    }

    /// <summary>What greedy <see cref="Sampler.Generate"/> gives for the chat prompt rendered with the "plain" template.</summary>
    static string GreedyReference(string user, int maxTokens)
    {
        using var model = PretrainedModel.Load("stories260k");
        var rendered = ChatTemplate.FromName("plain").RenderWithAssistantSpans([new RlhfSharp.Tokenization.ChatMessage("user", user)], addGenerationPrompt: true);
        var ids = model.Tokenizer.EncodeWithSpecialTokens(rendered.Text, model.AddsBos, rendered.ContentSpans);
        return new Sampler(model.Model, model.Tokenizer).Generate([ids], new SamplingOptions { Temperature = 0, MaxNewTokens = maxTokens })[0].Text;
    }

    static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0, MaxOutputTokenCount = maxTokens };

    [Fact]
    public void Serve_chat_at_temperature_0_gives_the_greedy_sampler_text_and_usage()
    {
        var completion = Chat().CompleteChat([new UserChatMessage(Prompt)], Greedy(24)).Value;
        string expected = GreedyReference(Prompt, 24);
        Assert.False(string.IsNullOrEmpty(expected));
        Assert.Equal(expected, completion.Content[0].Text);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(24, completion.Usage.OutputTokenCount);
        Assert.True(completion.Usage.InputTokenCount > 0);
        Assert.Equal(completion.Usage.InputTokenCount + 24, completion.Usage.TotalTokenCount);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
    }

    [Fact]
    public void Serve_streaming_chat_chunks_concatenate_to_the_same_text()
    {
        var text = new StringBuilder();
        int chunks = 0;
        ChatFinishReason? finish = null;
        foreach (var update in Chat().CompleteChatStreaming([new UserChatMessage(Prompt)], Greedy(24)))
        {
            foreach (var part in update.ContentUpdate) { text.Append(part.Text); chunks++; }
            finish ??= update.FinishReason;
        }
        Assert.Equal(GreedyReference(Prompt, 24), text.ToString());
        Assert.True(chunks > 1, $"expected several content chunks, got {chunks}");
        Assert.Equal(ChatFinishReason.Length, finish);
    }

    [Fact]
    public void Serve_stop_sequence_cuts_the_text_before_it()
    {
        string full = Chat().CompleteChat([new UserChatMessage(Prompt)], Greedy(40)).Value.Content[0].Text;
        // A stop string that first appears a few words in, so there is text before it.
        string stop = " was";
        int at = full.IndexOf(stop, StringComparison.Ordinal);
        Assert.True(at > 0, $"the greedy text has no '{stop}': {full}");
        var options = Greedy(40);
        options.StopSequences.Add(stop);
        var cut = Chat().CompleteChat([new UserChatMessage(Prompt)], options).Value;
        Assert.Equal(full[..at], cut.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);

        var streamed = new StringBuilder();
        foreach (var update in Chat().CompleteChatStreaming([new UserChatMessage(Prompt)], options))
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        Assert.Equal(full[..at], streamed.ToString());
    }

    [Fact]
    public void Serve_wrong_or_missing_key_gives_401()
    {
        var e = Assert.Throws<ClientResultException>(() => Chat("wrong-key").CompleteChat([new UserChatMessage(Prompt)], Greedy(4)));
        Assert.Equal(401, e.Status);
        using var anonymous = new HttpClient { BaseAddress = serve.BaseUri };
        var response = anonymous.GetAsync("models").Result;
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("invalid_api_key", (string?)JsonNode.Parse(response.Content.ReadAsStringAsync().Result)!["error"]!["code"]);
    }

    [Fact]
    public void Serve_n_gives_that_many_choices_and_counts_their_tokens()
    {
        using var http = Http();
        var body = new JsonObject { ["model"] = "stories260k", ["prompt"] = Prompt, ["n"] = 3, ["max_tokens"] = 8, ["temperature"] = 1.0, ["seed"] = 5 };
        var response = http.PostAsync("completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")).Result;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = JsonNode.Parse(response.Content.ReadAsStringAsync().Result)!;
        var choices = json["choices"]!.AsArray();
        Assert.Equal([0, 1, 2], choices.Select(c => (int)c!["index"]!).ToArray());
        Assert.All(choices, c => Assert.False(string.IsNullOrEmpty((string?)c!["text"])));
        Assert.Equal("text_completion", (string?)json["object"]);
        int completionTokens = (int)json["usage"]!["completion_tokens"]!;
        Assert.InRange(completionTokens, 3, 24);
        Assert.Equal((int)json["usage"]!["prompt_tokens"]! + completionTokens, (int)json["usage"]!["total_tokens"]!);
    }

    [Theory]
    [InlineData("chat/completions", "{\"messages\": [", 400, null)]
    [InlineData("chat/completions", "{\"messages\": []}", 400, "messages")]
    [InlineData("chat/completions", "{\"messages\": [{\"role\":\"user\",\"content\":\"hi\"}], \"temperature\": \"hot\"}", 400, "temperature")]
    [InlineData("chat/completions", "{\"messages\": [{\"role\":\"user\",\"content\":\"hi\"}], \"max_tokens\": 100000}", 400, "max_tokens")]
    [InlineData("completions", "{\"prompt\": 42}", 400, "prompt")]
    [InlineData("completions", "{\"prompt\": \"a\", \"stop\": [1]}", 400, "stop")]
    public void Serve_malformed_request_gives_400_in_OpenAI_error_shape(string route, string body, int status, string? param)
    {
        using var http = Http();
        var response = http.PostAsync(route, new StringContent(body, Encoding.UTF8, "application/json")).Result;
        Assert.Equal(status, (int)response.StatusCode);
        var error = JsonNode.Parse(response.Content.ReadAsStringAsync().Result)!["error"]!.AsObject();
        Assert.Equal(["message", "type", "param", "code"], error.Select(p => p.Key).ToArray());
        Assert.False(string.IsNullOrEmpty((string?)error["message"]));
        Assert.Equal("invalid_request_error", (string?)error["type"]);
        Assert.Equal(param, (string?)error["param"]);
    }

    [Fact]
    public void Serve_body_over_the_size_limit_gives_413()
    {
        using var http = Http();
        var body = new JsonObject { ["prompt"] = new string('a', 2 << 20) };
        // Expect: 100-continue lets the server refuse on Content-Length before the body is sent, so the answer cannot
        // race with a connection reset while the client is still writing 2 MiB.
        using var request = new HttpRequestMessage(HttpMethod.Post, "completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        request.Headers.ExpectContinue = true;
        var response = http.SendAsync(request).Result;
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.NotNull(JsonNode.Parse(response.Content.ReadAsStringAsync().Result)!["error"]!["message"]);
    }

    [Fact]
    public void Serve_unknown_route_gives_404_and_models_lists_the_model()
    {
        using var http = Http();
        var missing = http.GetAsync("engines").Result;
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.NotNull(JsonNode.Parse(missing.Content.ReadAsStringAsync().Result)!["error"]!["message"]);
        var models = JsonNode.Parse(http.GetStringAsync("models").Result)!;
        Assert.Equal("stories260k", (string?)models["data"]![0]!["id"]);
    }

    [Fact]
    public async Task Serve_four_concurrent_requests_share_fewer_batches_than_requests()
    {
        int before = serve.Server.Batcher.BatchesRun;
        var chat = Chat();
        var prompts = new[] { "Once upon a time", "The cat", "Lily and Tom", "One day" };
        var tasks = prompts.Select(p => chat.CompleteChatAsync([new UserChatMessage(p)], Greedy(48))).ToArray();
        var results = await Task.WhenAll(tasks);
        int batches = serve.Server.Batcher.BatchesRun - before;
        Assert.All(results, r => Assert.Equal(48, r.Value.Usage.OutputTokenCount));
        Assert.InRange(batches, 1, 3);
        // Left padding must not change greedy rows: each equals what it gets alone.
        Assert.Equal(GreedyReference(prompts[2], 48), results[2].Value.Content[0].Text);
    }

    [Fact]
    public async Task Serve_client_that_disconnects_mid_stream_does_not_break_the_loop()
    {
        using (var http = Http())
        {
            var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Prompt }), ["max_tokens"] = 400, ["stream"] = true };
            var request = new HttpRequestMessage(HttpMethod.Post, "chat/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: {", await reader.ReadLineAsync());
        } // the connection closes here, mid-generation
        var after = (await Chat().CompleteChatAsync([new UserChatMessage(Prompt)], Greedy(8))).Value;
        Assert.Equal(GreedyReference(Prompt, 8), after.Content[0].Text);
    }
}
