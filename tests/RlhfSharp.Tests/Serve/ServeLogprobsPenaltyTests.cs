using System.ClientModel;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Tests.Generation;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Serve;

/// <summary>
/// <c>logprobs</c>/<c>top_logprobs</c> and <c>presence_penalty</c>/<c>frequency_penalty</c> as the official OpenAI .NET SDK
/// (chat) and raw HTTP (legacy completions, which the SDK no longer has) see them, checked against the model itself.
/// </summary>
public class ServeLogprobsPenaltyTests(ServeFixture serve) : IClassFixture<ServeFixture>
{
    const string Prompt = "Once upon a time";
    static readonly Lazy<PretrainedModel> Reference = new(() => PretrainedModel.Load("stories260k"));

    ChatClient Chat() =>
        new("stories260k", new ApiKeyCredential(ServeFixture.ApiKey), new OpenAIClientOptions { Endpoint = serve.BaseUri, NetworkTimeout = TimeSpan.FromSeconds(60) });

    HttpClient Http()
    {
        var http = new HttpClient { BaseAddress = serve.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServeFixture.ApiKey);
        return http;
    }

    JsonNode Post(string route, JsonObject body)
    {
        using var http = Http();
        var response = http.PostAsync(route, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")).Result;
        string text = response.Content.ReadAsStringAsync().Result;
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonNode.Parse(text)!;
    }

    /// <summary>The chat prompt as the server encodes it (stories260k's "plain" template).</summary>
    static int[] ChatPromptIds(string user)
    {
        var m = Reference.Value;
        var rendered = ChatTemplate.FromName("plain").RenderWithAssistantSpans([new RlhfSharp.Tokenization.ChatMessage("user", user)], addGenerationPrompt: true);
        return m.Tokenizer.EncodeWithSpecialTokens(rendered.Text, m.AddsBos, rendered.ContentSpans);
    }

    static HashSet<int> Eos => [.. Reference.Value.Tokenizer.EosIds];

    [Fact]
    public void Chat_logprobs_are_the_models_log_softmax_with_sorted_top_logprobs()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
        var completion = Chat().CompleteChat([new UserChatMessage(Prompt)], options).Value;
        var prompt = ChatPromptIds(Prompt);
        var ids = PenalisedGreedy.Tokens(Reference.Value.Model, prompt, 16, 0, 0, Eos);
        var expected = PenalisedGreedy.ModelLogprobs(Reference.Value.Model, prompt, ids);
        var tokens = completion.ContentTokenLogProbabilities;
        Assert.Equal(completion.Usage.OutputTokenCount, tokens.Count);
        Assert.Equal(ids.Length, tokens.Count);
        for (int t = 0; t < ids.Length; t++)
        {
            Assert.Equal(Reference.Value.Tokenizer.Decode([ids[t]]), tokens[t].Token);
            Assert.InRange(tokens[t].LogProbability - expected[t], -1e-4f, 1e-4f);
            Assert.Equal(Encoding.UTF8.GetBytes(tokens[t].Token), tokens[t].Utf8Bytes!.Value.ToArray());
            var top = tokens[t].TopLogProbabilities;
            Assert.Equal(3, top.Count);
            // Greedy: the chosen token is the model's most likely one, so it heads its own top list.
            Assert.Equal(tokens[t].Token, top[0].Token);
            Assert.InRange(top[0].LogProbability - tokens[t].LogProbability, -1e-6f, 1e-6f);
            Assert.True(top[0].LogProbability >= top[1].LogProbability && top[1].LogProbability >= top[2].LogProbability);
        }
        Assert.Equal(completion.Content[0].Text, string.Concat(tokens.Select(x => x.Token)));
    }

    [Fact]
    public void Sampled_chat_logprobs_stay_the_models_own_under_temperature_and_penalties()
    {
        // Temperature and penalties change which tokens come out, not the log-probabilities reported for them.
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
        var options = new ChatCompletionOptions
        {
            Temperature = 1.3f, Seed = 11, MaxOutputTokenCount = 20, IncludeLogProbabilities = true,
            PresencePenalty = 0.7f, FrequencyPenalty = 0.4f,
        };
#pragma warning restore OPENAI001
        var tokens = Chat().CompleteChat([new UserChatMessage(Prompt)], options).Value.ContentTokenLogProbabilities;
        // A request batched alone is sampled with its seed, so the sampler here gives the same ids.
        var prompt = ChatPromptIds(Prompt);
        var ids = new Sampler(Reference.Value.Model, Reference.Value.Tokenizer).Generate([prompt], new SamplingOptions
        {
            Temperature = 1.3f, Seed = 11, MaxNewTokens = 20, PresencePenalty = 0.7f, FrequencyPenalty = 0.4f,
        })[0].NewIds.Where(id => !Eos.Contains(id)).ToArray();
        Assert.Equal(ids.Select(id => Reference.Value.Tokenizer.Decode([id])), tokens.Select(t => t.Token));
        var expected = PenalisedGreedy.ModelLogprobs(Reference.Value.Model, prompt, ids);
        for (int t = 0; t < ids.Length; t++)
        {
            Assert.InRange(tokens[t].LogProbability - expected[t], -1e-4f, 1e-4f);
            Assert.Empty(tokens[t].TopLogProbabilities);
        }
    }

    [Fact]
    public void Streaming_chat_logprobs_arrive_with_the_chunks_and_equal_the_non_streaming_ones()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16, IncludeLogProbabilities = true, TopLogProbabilityCount = 2 };
        var whole = Chat().CompleteChat([new UserChatMessage(Prompt)], options).Value.ContentTokenLogProbabilities;
        var streamed = new List<ChatTokenLogProbabilityDetails>();
        var text = new StringBuilder();
        int chunksWithLogprobs = 0;
        foreach (var update in Chat().CompleteChatStreaming([new UserChatMessage(Prompt)], options))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            if (update.ContentTokenLogProbabilities.Count > 0) chunksWithLogprobs++;
            streamed.AddRange(update.ContentTokenLogProbabilities);
        }
        Assert.True(chunksWithLogprobs > 1, $"logprobs came in {chunksWithLogprobs} chunk(s)");
        Assert.Equal(whole.Select(t => t.Token), streamed.Select(t => t.Token));
        Assert.Equal(whole.Select(t => t.LogProbability), streamed.Select(t => t.LogProbability));
        Assert.Equal(whole.Select(t => t.TopLogProbabilities.Count), streamed.Select(t => t.TopLogProbabilities.Count));
        Assert.Equal(text.ToString(), string.Concat(streamed.Select(t => t.Token)));
    }

    [Fact]
    public void Completions_logprobs_give_tokens_token_logprobs_top_logprobs_and_text_offsets()
    {
        var body = new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 12, ["temperature"] = 0, ["logprobs"] = 2 };
        var choice = Post("completions", body)["choices"]![0]!;
        var lp = choice["logprobs"]!;
        var tokens = lp["tokens"]!.AsArray().Select(x => (string)x!).ToArray();
        var tokenLogprobs = lp["token_logprobs"]!.AsArray().Select(x => (float)x!).ToArray();
        var offsets = lp["text_offset"]!.AsArray().Select(x => (int)x!).ToArray();
        var top = lp["top_logprobs"]!.AsArray().Select(x => x!.AsObject()).ToArray();
        var prompt = Reference.Value.EncodePrompt(Prompt);
        var ids = PenalisedGreedy.Tokens(Reference.Value.Model, prompt, 12, 0, 0, Eos);
        var expected = PenalisedGreedy.ModelLogprobs(Reference.Value.Model, prompt, ids);
        Assert.Equal(ids.Select(id => Reference.Value.Tokenizer.Decode([id])), tokens);
        Assert.Equal((string)choice["text"]!, string.Concat(tokens));
        for (int t = 0; t < ids.Length; t++)
        {
            Assert.InRange(tokenLogprobs[t] - expected[t], -1e-4f, 1e-4f);
            // OpenAI: the k alternatives plus the sampled token; greedy picks the top one, so 2 keys here.
            Assert.Equal(2, top[t].Count);
            Assert.InRange((float)top[t][tokens[t]]! - tokenLogprobs[t], -1e-6f, 1e-6f);
            // text_offset counts characters from the start of the prompt text.
            Assert.Equal(Prompt.Length + tokens.Take(t).Sum(x => x.Length), offsets[t]);
        }
    }

    [Fact]
    public void Streaming_completions_logprobs_continue_offsets_across_chunks()
    {
        var body = new JsonObject { ["prompt"] = Prompt, ["max_tokens"] = 12, ["temperature"] = 0, ["logprobs"] = 1 };
        var whole = Post("completions", body)["choices"]![0]!["logprobs"]!;
        body["stream"] = true;
        using var http = Http();
        var sse = http.PostAsync("completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")).Result.Content.ReadAsStringAsync().Result;
        var tokens = new List<string>();
        var offsets = new List<int>();
        foreach (var line in sse.Split('\n').Where(l => l.StartsWith("data: {")))
            if (JsonNode.Parse(line[6..])!["choices"]![0]!["logprobs"] is JsonObject lp)
            {
                tokens.AddRange(lp["tokens"]!.AsArray().Select(x => (string)x!));
                offsets.AddRange(lp["text_offset"]!.AsArray().Select(x => (int)x!));
            }
        Assert.Equal(whole["tokens"]!.AsArray().Select(x => (string)x!), tokens);
        Assert.Equal(whole["text_offset"]!.AsArray().Select(x => (int)x!), offsets);
    }

    [Fact]
    public void Chat_penalties_give_the_greedy_tokens_of_openais_formula_computed_by_hand()
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 32, PresencePenalty = 2f, FrequencyPenalty = 1.5f };
        string text = Chat().CompleteChat([new UserChatMessage(Prompt)], options).Value.Content[0].Text;
        var prompt = ChatPromptIds(Prompt);
        var penalised = PenalisedGreedy.Tokens(Reference.Value.Model, prompt, 32, 2, 1.5, Eos);
        var plain = PenalisedGreedy.Tokens(Reference.Value.Model, prompt, 32, 0, 0, Eos);
        Assert.NotEqual(plain, penalised);
        Assert.Equal(Reference.Value.Tokenizer.Decode(penalised), text);
    }

    [Theory]
    [InlineData("chat/completions", "\"presence_penalty\": 2.5", "presence_penalty")]
    [InlineData("chat/completions", "\"frequency_penalty\": -3", "frequency_penalty")]
    [InlineData("chat/completions", "\"top_logprobs\": 2", "top_logprobs")]
    [InlineData("chat/completions", "\"logprobs\": true, \"top_logprobs\": 21", "top_logprobs")]
    [InlineData("completions", "\"logprobs\": 6", "logprobs")]
    public void Out_of_range_penalties_and_logprobs_give_400_naming_the_field(string route, string extra, string param)
    {
        string input = route == "completions" ? "\"prompt\": \"hi\"" : "\"messages\": [{\"role\":\"user\",\"content\":\"hi\"}]";
        using var http = Http();
        var response = http.PostAsync(route, new StringContent($"{{{input}, {extra}}}", Encoding.UTF8, "application/json")).Result;
        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal(param, (string?)JsonNode.Parse(response.Content.ReadAsStringAsync().Result)!["error"]!["param"]);
    }
}
