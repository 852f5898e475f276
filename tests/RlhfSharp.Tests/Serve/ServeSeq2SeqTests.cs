using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Server;
using RlhfSharp.Tests.Cli;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Serve;

/// <summary>
/// <c>rlhf serve</c> with a T5 folder (issue 19): completions read the prompt with the encoder and answer with the decoder,
/// streamed or not, batched with a padded encoder row, as transformers' greedy <c>generate</c> does (the fixture's
/// expected.json); chat completions render the conversation into the encoder; echo with logprobs is refused by name.
/// </summary>
public sealed class ServeSeq2SeqTests : IAsyncLifetime
{
    readonly string dir = Directory.CreateTempSubdirectory("rlhf-serve-t5-").FullName;
    PretrainedSeq2SeqModel model = null!;
    OpenAiServer server = null!;
    Uri baseUri = null!;

    public async Task InitializeAsync()
    {
        model = PretrainedSeq2SeqModel.Load(Seq2SeqCliTests.T5Folder(dir));
        server = await OpenAiServer.StartAsync(new Seq2SeqTextGenerator(model), new ServerOptions { Urls = "http://127.0.0.1:0", ModelName = "t5", BatchWindow = TimeSpan.FromMilliseconds(50) });
        baseUri = new Uri(server.Urls[0].TrimEnd('/') + "/v1/");
    }

    public async Task DisposeAsync()
    {
        await server.DisposeAsync();
        model.Dispose();
        Directory.Delete(dir, recursive: true);
    }

    (int Status, string Body) Post(string route, JsonObject body)
    {
        using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(120) };
        using var response = http.PostAsync(route, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json")).GetAwaiter().GetResult();
        return ((int)response.StatusCode, response.Content.ReadAsStringAsync().GetAwaiter().GetResult());
    }

    static IEnumerable<JsonNode> Events(string body) => body.Split('\n').Where(l => l.StartsWith("data: {")).Select(l => JsonNode.Parse(l[6..])!);

    [Fact]
    public void Completions_of_token_id_prompts_are_transformers_greedy_decoder_tokens_streamed_or_not()
    {
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated", "expected.json")))!["generate"]!;
        var padded = expected.AsArray().Single(g => (string)g!["name"]! == "greedy_batch_padded_encoder")!;
        // Two prompts of different lengths in one request: one right-padded encoder batch.
        var prompts = padded["input_ids"]!.AsArray().Zip(padded["attention_mask"]!.AsArray(),
            (ids, mask) => ids!.AsArray().Zip(mask!.AsArray()).Where(p => (int)p.Second! == 1).Select(p => (int)p.First!).ToArray()).ToList();
        var want = padded["new_tokens"]!.AsArray().Select(t => model.Tokenizer.Decode(t!.AsArray().Select(x => (int)x!).ToList())).ToList();
        var body = new JsonObject
        {
            ["prompt"] = new JsonArray(prompts.Select(p => (JsonNode)new JsonArray(p.Select(x => (JsonNode)x).ToArray())).ToArray()),
            ["temperature"] = 0, ["max_tokens"] = 5,
        };
        var (status, text) = Post("completions", body);
        Assert.True(status == 200, text);
        var json = JsonNode.Parse(text)!;
        Assert.Equal(want, json["choices"]!.AsArray().Select(c => (string)c!["text"]!));
        Assert.All(json["choices"]!.AsArray(), c => Assert.Equal("length", (string)c!["finish_reason"]!));
        Assert.Equal(10, (int)json["usage"]!["completion_tokens"]!);
        Assert.Equal(prompts.Sum(p => p.Length), (int)json["usage"]!["prompt_tokens"]!);

        body["stream"] = true;
        (status, text) = Post("completions", body);
        Assert.Equal(200, status);
        var chunks = Events(text).SelectMany(e => e["choices"]!.AsArray()).ToList();
        for (int i = 0; i < 2; i++)
            Assert.Equal(want[i], string.Concat(chunks.Where(c => (int)c!["index"]! == i).Select(c => (string?)c!["text"])));
    }

    [Fact]
    public void Chat_completions_put_the_rendered_conversation_and_eos_into_the_encoder_streamed_or_not()
    {
        var messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "a0 b0 c1" });
        // What the decoder answers to the plain template's text encoded as rlhf generate --prompt encodes it (with EOS when
        // the tokenizer's post-processor appends it, as T5's does), from the sampler rlhf generate uses.
        var rendered = ChatTemplate.FromName("plain").RenderWithAssistantSpans([new ChatMessage("user", "a0 b0 c1")], addGenerationPrompt: true);
        var ids = model.EncodePrompt(rendered.Text);
        var want = new Seq2SeqSampler(model.Model, model.Tokenizer).Generate([ids], new SamplingOptions { Temperature = 0, MaxNewTokens = 6 })[0];

        var (status, text) = Post("chat/completions", new JsonObject { ["messages"] = messages.DeepClone(), ["temperature"] = 0, ["max_tokens"] = 6 });
        Assert.True(status == 200, text);
        var json = JsonNode.Parse(text)!;
        Assert.Equal(want.Text, (string)json["choices"]![0]!["message"]!["content"]!);
        Assert.Equal(ids.Length, (int)json["usage"]!["prompt_tokens"]!);
        Assert.Equal(want.FinishReason == FinishReason.Stop ? "stop" : "length", (string)json["choices"]![0]!["finish_reason"]!);

        (status, text) = Post("chat/completions", new JsonObject { ["messages"] = messages.DeepClone(), ["temperature"] = 0, ["max_tokens"] = 6, ["stream"] = true });
        Assert.Equal(200, status);
        Assert.Equal(want.Text, string.Concat(Events(text).Select(e => (string?)e["choices"]![0]!["delta"]!["content"])));
    }

    [Fact]
    public void Top_logprobs_are_the_decoders_and_echo_with_logprobs_is_refused_naming_echo()
    {
        int[] prompt = [83, 67, 35, 47, 10, 24];
        SampledToken? first = null;
        new Seq2SeqSampler(model.Model, model.Tokenizer).Generate([prompt], new SamplingOptions { Temperature = 0, MaxNewTokens = 1, TopLogprobs = 3 }, onSampled: t => first ??= t);
        var body = new JsonObject { ["prompt"] = new JsonArray(prompt.Select(x => (JsonNode)x).ToArray()), ["temperature"] = 0, ["max_tokens"] = 1, ["logprobs"] = 3 };
        var (status, text) = Post("completions", body);
        Assert.True(status == 200, text);
        var lp = JsonNode.Parse(text)!["choices"]![0]!["logprobs"]!;
        Assert.Equal(first!.ModelLogprob, (float)lp["token_logprobs"]![0]!, 5);
        var top = lp["top_logprobs"]![0]!.AsObject();
        foreach (var (id, logprob) in first.Top) Assert.Equal(logprob, (float)top[model.Tokenizer.Decode([id], skipSpecial: false)]!, 5);

        body["echo"] = true;
        (status, text) = Post("completions", body);
        Assert.Equal(400, status);
        Assert.Equal("echo", (string?)JsonNode.Parse(text)!["error"]!["param"]);
    }
}
