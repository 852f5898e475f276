using System.Text;
using System.Text.Json.Nodes;
using RlhfSharp.Algorithms.Ilql;
using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using RlhfSharp.Server;
using RlhfSharp.Tests.Algorithms;

namespace RlhfSharp.Tests.Serve;

/// <summary>
/// Issue 14: a model folder trained by <c>rlhf ilql</c> holds its Q/V heads beside the weights, and <c>rlhf serve</c>
/// decodes with them (log π + β·(Q − V)), as <c>rlhf generate</c> does (IlqlTests).
/// </summary>
public sealed class ServeIlqlTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("rlhf-serve-ilql-").FullName;
    public void Dispose() => Directory.Delete(dir, recursive: true);

    static async Task<string> Complete(PretrainedModel model, int[] prompt)
    {
        await using var server = await OpenAiServer.StartAsync(model, new ServerOptions { Urls = "http://127.0.0.1:0" });
        using var http = new HttpClient { BaseAddress = new Uri(server.Urls[0].TrimEnd('/') + "/v1/"), Timeout = TimeSpan.FromSeconds(120) };
        var body = new JsonObject { ["prompt"] = new JsonArray([.. prompt.Select(i => (JsonNode)i)]), ["temperature"] = 0, ["max_tokens"] = 3 };
        using var response = await http.PostAsync("completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return (string)JsonNode.Parse(text)!["choices"]![0]!["text"]!;
    }

    [Fact]
    public async Task Rlhf_serve_decodes_with_the_ilql_heads_in_the_model_folder()
    {
        const int k = 300; // an ordinary piece of stories260K's vocabulary
        using (var base_ = PretrainedModel.Load("stories260k"))
        // Q = 100 on token k in every state and V = 0: with β = 1 the shifted logits make k the greedy token at every step.
        using (var heads = IlqlTests.AdvantageOn(k, 100))
            HuggingFaceCheckpoint.Save(base_.Model, dir, writeExtras: d => { base_.WriteTokenizerFiles(d); IlqlHeadsFile.Save(heads, d, 0.001, 1.0); });

        using var model = PretrainedModel.Load(dir);
        var ilql = Assert.IsType<IlqlDecoding>(model.Model.Ilql); // loading the folder attached the heads, as the CLI loads it
        int[] prompt = [1, 403, 407];
        string expected = model.Tokenizer.Decode([k, k, k]);
        Assert.Equal(expected, await Complete(model, prompt));

        model.Model.Ilql = null; // the language model alone (what --ilql-beta 0 selects) answers otherwise
        Assert.NotEqual(expected, await Complete(model, prompt));
        model.Model.Ilql = ilql;
    }
}
