using System.Text.Json.Nodes;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Cli;

/// <summary><c>rlhf generate</c> on a T5 folder and <c>rlhf tokenize</c> on a Unigram tokenizer, against transformers'
/// generate (fixtures/hf-t5) and tokenizers.js (fixtures/tokenizers/expected/pegasus.json).</summary>
public sealed class Seq2SeqCliTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RealTokenizerFiles _files = new();
    public void Dispose() { _dir.Dispose(); _files.Dispose(); }

    /// <summary>The v1.1 fixture model with a small Unigram tokenizer of its 89 ids (any tokenizer will do: the prompt is ids).</summary>
    private string T5Folder() => T5Folder(_dir.Path);

    internal static string T5Folder(string root)
    {
        var source = Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated");
        var dir = Path.Combine(root, "t5");
        Directory.CreateDirectory(dir);
        foreach (var name in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(source, name), Path.Combine(dir, name));
        var vocab = new JsonArray(new JsonArray("<pad>", 0.0), new JsonArray("</s>", 0.0), new JsonArray("<unk>", 0.0));
        for (int i = 3; i < 89; i++) vocab.Add(new JsonArray("▁" + (char)('a' + (i - 3) % 26) + (i - 3) / 26, -i / 10.0));
        var special = (int id, string content) => new JsonObject { ["id"] = id, ["content"] = content, ["special"] = true, ["normalized"] = false };
        var tokenizer = new JsonObject
        {
            ["added_tokens"] = new JsonArray(special(0, "<pad>"), special(1, "</s>"), special(2, "<unk>")),
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "always" },
            ["decoder"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "always" },
            ["model"] = new JsonObject { ["type"] = "Unigram", ["unk_id"] = 2, ["vocab"] = vocab },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}""");
        return dir;
    }

    [Fact]
    public void Generate_on_a_t5_folder_gives_transformers_greedy_decoder_tokens_for_encoder_prompt_ids()
    {
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated", "expected.json")))!["generate"]![0]!;
        var promptIds = expected["input_ids"]![0]!.AsArray().Select(x => (int)x!).ToArray();
        var newTokens = expected["new_tokens"]![0]!.AsArray().Select(x => (int)x!).ToArray();
        var r = RlhfProcess.Run("generate", "--model", T5Folder(), "--prompt-ids", string.Join(",", promptIds),
            "--max-new-tokens", newTokens.Length.ToString(), "--temperature", "0", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var output = JsonNode.Parse(r.Stdout.Trim())!;
        Assert.Equal(promptIds, output["ids"]!.AsArray().Select(x => (int)x!));
        Assert.Equal(newTokens, output["new_ids"]!.AsArray().Select(x => (int)x!));
        Assert.Equal(newTokens.Length, output["logprobs"]!.AsArray().Count);
    }

    [Fact]
    public void Tokenize_a_unigram_model_prints_the_tokenizers_js_ids_with_eos()
    {
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(RealTokenizerFiles.FixtureDir, "expected", "pegasus.json")))!["cases"]!
            .AsArray().First(c => (string)c!["text"]! == "Hello </s> world")!;
        var r = RlhfProcess.Run("tokenize", "--model", _files.Folder("pegasus"), "--text", "Hello </s> world", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var output = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(expected["ids_with_special"]!.AsArray().Select(x => (int)x!), output["ids"]!.AsArray().Select(x => (int)x!));
        Assert.Equal("Hello</s> world</s>", (string)output["text"]!);
    }

    [Fact]
    public void Sft_on_a_t5_folder_trains_on_prompt_target_pairs_and_saves_transformers_keys()
    {
        var data = Path.Combine(_dir.Path, "demos.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 6).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "completion": "d0 e{{i % 3}}"}"""));
        var run = Path.Combine(_dir.Path, "run");
        var r = RlhfProcess.Run("sft", "--set", $"model={T5Folder()}", "--set", $"sft_data={data}", "--set", "sft.epochs=2",
            "--set", "sft.batch_size=2", "--set", "sft.optimizer.learning_rate=0.01", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("eval_loss:", r.Stdout);
        var checkpoint = Path.Combine(run, "sft", "checkpoint");
        Assert.True(File.Exists(Path.Combine(checkpoint, "tokenizer.json")));
        var keys = RlhfSharp.Checkpoints.SafeTensorsHeader.Read(Path.Combine(checkpoint, "model.safetensors")).Entries.Select(e => e.Name).Order(StringComparer.Ordinal);
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "t5v11_tiny_gated", "expected.json")))!["saved_keys"]!
            .AsArray().Select(k => (string)k!).Order(StringComparer.Ordinal);
        Assert.Equal(expected, keys);
        Assert.True(File.Exists(Path.Combine(run, "sft", "metrics.jsonl")));
    }

    [Fact]
    public void Dpo_on_a_t5_folder_trains_encoder_decoder_pairs_and_raises_the_reward_margin()
    {
        var data = Path.Combine(_dir.Path, "pairs.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 6).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "chosen": "d0 e{{i % 3}}", "rejected": "f1 g1"}"""));
        var run = Path.Combine(_dir.Path, "run");
        var r = RlhfProcess.Run("dpo", "--set", $"model={T5Folder()}", "--set", $"dpo_data={data}", "--set", "dpo.epochs=3",
            "--set", "dpo.batch_size=2", "--set", "dpo.beta=0.5", "--set", "dpo.optimizer.learning_rate=0.01", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var margin = r.Stdout.Split('\n').Single(l => l.StartsWith("eval_margin:"));
        Assert.True(double.Parse(margin["eval_margin:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture) > 0, r.Stdout);
        Assert.True(File.Exists(Path.Combine(run, "dpo", "checkpoint", "model.safetensors")));
    }
}
