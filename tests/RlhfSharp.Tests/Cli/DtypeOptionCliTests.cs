using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Tests.Serve;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Cli;

/// <summary>
/// Issue 20: <c>--dtype</c> on <c>generate</c>, <c>eval</c> and <c>serve</c> holds the model in that type (chat's is
/// measured by LoadPeakMemoryTests). Each command's greedy text is the one the model loaded in bf16 decodes, on a prompt
/// where bf16 and float32 decode differently, so a command that ignored the option would fail.
/// </summary>
public sealed class DtypeOptionCliTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-dtype-cli-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);
    const int NewTokens = 40;

    static int[] Greedy(PretrainedModel m, int[] prompt) =>
        new Sampler(m.Model, m.Tokenizer).Generate([prompt], new SamplingOptions { Temperature = 0, MaxNewTokens = NewTokens })[0].NewIds
            .TakeWhile(id => !m.Tokenizer.EosIds.Contains(id)).ToArray();

    /// <summary>The first prompt whose greedy continuation differs between float32 and bf16, with both continuations.</summary>
    static (string Prompt, int[] Ids, int[] Bf16, int[] Float32, string Bf16Text) Divergent()
    {
        using var f32 = PretrainedModel.Load("stories260k", ScalarType.Float32);
        using var bf16 = PretrainedModel.Load("stories260k", ScalarType.BFloat16);
        string[] prompts = ["Once upon a time", "Lily saw a big dog", "Tom had a red ball", "The sun was hot", "One day, a little bird",
            "Sam and Mia went to the park", "The cat was sad", "There was a tall tree", "Ben wanted a cookie", "Mom said"];
        foreach (var p in prompts)
        {
            var ids = bf16.EncodePrompt(p);
            int[] a = Greedy(bf16, ids), b = Greedy(f32, ids);
            if (!a.SequenceEqual(b)) return (p, ids, a, b, bf16.Tokenizer.Decode(a));
        }
        throw new InvalidOperationException("no prompt decodes differently in bf16 and float32: the test cannot tell the dtypes apart");
    }

    [Fact]
    public async Task Generate_eval_and_serve_decode_as_the_model_loaded_in_the_dtype_asked_for()
    {
        var (prompt, ids, bf16, f32, bf16Text) = Divergent();

        int[] Generate(string dtype)
        {
            var r = RlhfProcess.Run("generate", "--model", "stories260k", "--dtype", dtype, "--prompt-ids", string.Join(",", ids),
                "--temperature", "0", "--max-new-tokens", $"{NewTokens}", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            return JsonNode.Parse(r.Stdout.Trim())!["new_ids"]!.AsArray().Select(x => (int)x!).ToArray();
        }
        Assert.Equal(bf16, Generate("bf16").Take(bf16.Length));
        Assert.Equal(f32, Generate("float32").Take(f32.Length));

        string data = Path.Combine(tmp, "prompts.jsonl");
        File.WriteAllText(data, new JsonObject { ["prompt"] = prompt }.ToJsonString() + "\n");
        var e = RlhfProcess.Run("eval", "--model", "stories260k", "--dtype", "bf16", "--data", data, "--out", Path.Combine(tmp, "eval"),
            "--temperature", "0", "--max-new-tokens", $"{NewTokens}");
        Assert.True(e.ExitCode == 0, e.Stderr);
        Assert.Equal(bf16Text, (string)JsonNode.Parse(File.ReadLines(Path.Combine(tmp, "eval", "samples.jsonl")).First())!["completion"]!);

        Assert.Equal(bf16Text, await Serve("bf16", ids));
    }

    /// <summary>A greedy completion from a real <c>rlhf serve --dtype</c> process.</summary>
    static async Task<string> Serve(string dtype, int[] ids)
    {
        using var server = await ServeProcess.StartAsync(["--dtype", dtype]);
        var body = new JsonObject { ["prompt"] = new JsonArray([.. ids.Select(i => (JsonNode)i)]), ["temperature"] = 0, ["max_tokens"] = NewTokens };
        using var response = await server.Http.PostAsync("completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return (string)JsonNode.Parse(text)!["choices"]![0]!["text"]!;
    }
}
