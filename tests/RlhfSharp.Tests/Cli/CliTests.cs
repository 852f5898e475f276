using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Tokenization;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Cli;

public sealed class CliTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-cli-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Fact]
    public void Generate_json_with_prompt_ids_gives_the_greedy_oracle_with_one_logprob_per_token()
    {
        var r = RlhfProcess.Run("generate", "--model", "stories260k", "--prompt-ids", "1", "--max-new-tokens", "64", "--temperature", "0", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var o = JsonNode.Parse(r.Stdout.Trim())!;
        var newIds = o["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
        Assert.Equal(new[] { 403, 407, 261, 378, 432, 383, 286, 261, 376, 298 }, newIds.Take(10));
        Assert.Equal(64, newIds.Length);
        Assert.Equal([1, .. newIds], o["ids"]!.AsArray().Select(x => x!.GetValue<int>()));
        Assert.Equal(64, o["logprobs"]!.AsArray().Count);
        Assert.All(o["logprobs"]!.AsArray(), lp => Assert.True(lp!.GetValue<double>() <= 0));
        Assert.StartsWith(" Once upon a time, there was a little girl named Lily.", o["text"]!.GetValue<string>());
    }

    [Fact]
    public void Chat_answers_each_line_with_the_models_greedy_continuation()
    {
        var r = RlhfProcess.RunWithInput("Lily went\n\n", "chat", "--model", "stories260k", "--max-new-tokens", "12", "--temperature", "0");
        Assert.True(r.ExitCode == 0, r.Stderr);
        // The plain template renders the user's line as the prompt; the answer is its greedy continuation.
        using var model = PretrainedModel.Load("stories260k");
        var expected = new RlhfSharp.Generation.Sampler(model.Model, model.Tokenizer)
            .Generate([model.EncodePrompt("Lily went")], new RlhfSharp.Generation.SamplingOptions { Temperature = 0, MaxNewTokens = 12 })[0].Text;
        Assert.Contains(expected.Trim(), r.Stdout);
    }

    [Fact]
    public void A_tokenizer_larger_than_the_models_vocabulary_is_refused()
    {
        string dir = Path.Combine(tmp, "mismatch");
        Assert.Equal(0, RlhfProcess.Run("convert", "--model", "stories260k", "--out", dir).ExitCode);
        string config = Path.Combine(dir, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(config))!;
        json["vocab_size"] = 300;
        File.WriteAllText(config, json.ToJsonString());
        // The weights no longer fit the config either; the tokenizer check must not be what hides that, so
        // cut the embedding to match and leave the tokenizer (512 tokens) too large.
        var weights = RlhfSharp.Checkpoints.SafeTensors.Load(Path.Combine(dir, "model.safetensors"));
        weights["model.embed_tokens.weight"] = weights["model.embed_tokens.weight"].narrow(0, 0, 300).contiguous();
        RlhfSharp.Checkpoints.SafeTensors.Save(Path.Combine(dir, "model.safetensors"), weights.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        var r = RlhfProcess.Run("generate", "--model", dir, "--prompt", "hi");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("tokenizer has 512 tokens", r.Stderr);
        Assert.Contains("vocab_size is 300", r.Stderr);
    }

    [Fact]
    public void Every_command_has_help()
    {
        foreach (var command in new[] { "generate", "chat", "convert", "pipeline", "sft", "rm", "ppo", "rs", "online-dpo", "dpo", "ipo", "kto", "orpo", "simpo",
                     "grpo", "rloo", "reinforce-pp", "reinforce-pp-baseline", "remax", "eval" })
        {
            var r = RlhfProcess.Run(command, "--help");
            Assert.Equal(0, r.ExitCode);
            Assert.Contains("Usage:", r.Stdout);
            Assert.Contains(command is "generate" or "chat" or "convert" or "eval" ? "--model" : "--recipe", r.Stdout);
        }
    }

    [Theory]
    [InlineData("missing-file", "generate --prompts {tmp}/nope.txt", "nope.txt")]
    [InlineData("missing-model", "generate --model {tmp}/nothing --prompt hi", "nothing")]
    [InlineData("bad-ids", "generate --prompt-ids 1,x,3", "'x'")]
    [InlineData("id-out-of-vocab", "generate --prompt-ids 1,9999", "9999")]
    [InlineData("two-prompt-sources", "generate --prompt hi --prompt-ids 1", "exactly one")]
    [InlineData("bad-top-p", "generate --prompt hi --top-p 0", "top_p")]
    [InlineData("unknown-algo", "pipeline --out {tmp}/run --algo ppo,dpp", "unknown method 'dpp'")]
    [InlineData("empty-algo", "pipeline --out {tmp}/run --algo ,", "no method named")]
    public void Bad_input_is_one_clear_line_and_a_nonzero_exit(string name, string args, string mentioned)
    {
        _ = name;
        var r = RlhfProcess.Run(args.Replace("{tmp}", tmp).Split(' '));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(mentioned, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void Bad_jsonl_prompt_names_file_and_line()
    {
        string file = Path.Combine(tmp, "p.jsonl");
        File.WriteAllLines(file, ["{\"prompt\": \"Once\"}", "{\"prompt\": 3}"]);
        var r = RlhfProcess.Run("generate", "--prompts", file);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("p.jsonl:2", r.Stderr);
    }

    [Fact]
    public void Convert_writes_an_hf_folder_that_computes_what_the_llama2c_model_computes()
    {
        string outDir = Path.Combine(tmp, "stories-hf");
        var r = RlhfProcess.Run("convert", "--model", "stories260k", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);

        using var original = PretrainedModel.Load("stories260k");
        using var converted = PretrainedModel.Load(outDir);
        Assert.IsType<HfTokenizer>(converted.Tokenizer);
        string text = "Once upon a time, Lily saw a big, red ball.";
        Assert.Equal(original.EncodePrompt(text), converted.EncodePrompt(text));
        using var _ = no_grad();
        var ids = tensor(original.EncodePrompt(text).Select(x => (long)x).ToArray()).unsqueeze(0);
        Assert.True(original.Model.Forward(ids).eq(converted.Model.Forward(ids)).all().item<bool>(), "converted logits differ");
    }
}
