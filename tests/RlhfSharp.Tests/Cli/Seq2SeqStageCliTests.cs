using System.Globalization;
using System.Text.Json.Nodes;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Cli;

/// <summary>
/// The stage commands on a T5 folder beyond SFT and DPO: LoRA stages that save PEFT adapters and chain, PPO and NLPO
/// with a text reward, SimPO, eval with the reference metrics, and clear errors for what T5 does not do yet.
/// </summary>
public sealed class Seq2SeqStageCliTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    static double Number(string stdout, string key) => double.Parse(
        stdout.Split('\n').Single(l => l.StartsWith(key + ":", StringComparison.Ordinal))[(key.Length + 1)..].Trim(), CultureInfo.InvariantCulture);

    [Fact]
    public void Lora_sft_then_lora_dpo_on_t5_save_peft_adapters_that_chain_and_generate_loads_merged()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        var demos = Path.Combine(_dir.Path, "demos.jsonl");
        File.WriteAllLines(demos, Enumerable.Range(0, 6).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "completion": "d0 e{{i % 3}}"}"""));
        var pairs = Path.Combine(_dir.Path, "pairs.jsonl");
        File.WriteAllLines(pairs, Enumerable.Range(0, 6).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "chosen": "d0 e{{i % 3}}", "rejected": "f1 g1"}"""));
        var run = Path.Combine(_dir.Path, "run");
        var r = RlhfProcess.Run("sft", "--set", $"model={model}", "--set", $"sft_data={demos}", "--set", "sft.epochs=2", "--set", "sft.batch_size=2",
            "--set", "sft.lora={}", "--set", "sft.optimizer.learning_rate=0.01", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var sft = Path.Combine(run, "sft", "checkpoint");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(sft, "adapter_config.json")))!;
        Assert.Equal("SEQ_2_SEQ_LM", (string)config["task_type"]!);
        Assert.Equal(["q", "v"], config["target_modules"]!.AsArray().Select(n => (string)n!));
        Assert.False(File.Exists(Path.Combine(sft, "model.safetensors")));

        r = RlhfProcess.Run("dpo", "--set", $"model={model}", "--set", $"dpo_data={pairs}", "--set", "dpo.epochs=3", "--set", "dpo.batch_size=2",
            "--set", "dpo.lora={}", "--set", "dpo.beta=0.5", "--set", "dpo.optimizer.learning_rate=0.01", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(Number(r.Stdout, "eval_margin") > 0, r.Stdout);
        var dpo = Path.Combine(run, "dpo", "checkpoint");
        Assert.Equal(Path.GetFullPath(sft), (string)JsonNode.Parse(File.ReadAllText(Path.Combine(dpo, "adapter_config.json")))!["base_model_name_or_path"]!);

        r = RlhfProcess.Run("generate", "--model", dpo, "--prompt-ids", "5,6,7,1", "--max-new-tokens", "4", "--temperature", "0", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(4, JsonNode.Parse(r.Stdout.Trim())!["new_ids"]!.AsArray().Count);
    }

    [Fact]
    public void Ppo_and_nlpo_on_t5_train_on_a_text_reward_and_an_rm_term_is_refused_by_name()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        var prompts = Path.Combine(_dir.Path, "prompts.jsonl");
        File.WriteAllLines(prompts, Enumerable.Range(0, 8).Select(i => $$"""{"prompt": "a0 b0 c{{i}}"}"""));
        var run = Path.Combine(_dir.Path, "run");
        string[] common = ["--set", $"model={model}", "--set", $"ppo_prompts={prompts}", "--set", """rewards=[{"source": "keyword", "pattern": "a0"}]""",
            "--set", "ppo.steps=2", "--set", "ppo.rollout_batch_size=4", "--set", "ppo.mini_batch_size=2", "--set", "ppo.max_new_tokens=6",
            "--set", "ppo.critic=value_head", "--out", run];
        var r = RlhfProcess.Run(["ppo", .. common]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("reward_mean:", r.Stdout);
        Assert.True(File.Exists(Path.Combine(run, "ppo", "checkpoint", "model.safetensors")));
        Assert.Equal(2, File.ReadAllLines(Path.Combine(run, "ppo", "metrics.jsonl")).Length);

        r = RlhfProcess.Run(["nlpo", .. common, "--set", "nlpo.min_tokens_to_keep=1", "--set", "nlpo.top_mask=0.5"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(run, "nlpo", "checkpoint", "model.safetensors")));

        r = RlhfProcess.Run("ppo", "--set", $"model={model}", "--set", $"ppo_prompts={prompts}", "--out", Path.Combine(_dir.Path, "run2"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("an 'rm' term", r.Stderr);
    }

    [Fact]
    public void Eval_on_t5_reports_reference_metrics_and_unsupported_commands_say_so()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        var data = Path.Combine(_dir.Path, "eval.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 4).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "completion": "d0 e{{i % 3}}"}"""));
        var output = Path.Combine(_dir.Path, "eval");
        var r = RlhfProcess.Run("eval", "--model", model, "--data", data, "--out", output, "--max-new-tokens", "5", "--temperature", "0");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))!;
        Assert.Equal(4, (double)metrics["samples"]!);
        foreach (var key in new[] { "rouge1", "bleu", "meteor", "distinct_1", "perplexity_samples", "perplexity_references" })
            Assert.True(metrics[key] is not null, key);
        Assert.True((double)metrics["perplexity_references"]! > 1, "perplexity of a random model's references");

        foreach (var args in new[] { new[] { "serve", "--model", model }, ["chat", "--model", model], ["kto", "--set", $"model={model}", "--out", Path.Combine(_dir.Path, "k")] })
        {
            r = RlhfProcess.Run(args);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("encoder-decoder (T5)", r.Stderr);
        }
    }
}
