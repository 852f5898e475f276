using System.Globalization;
using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Tokenization;
using TorchSharp;
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
    public void Ppo_and_nlpo_on_t5_train_on_a_text_reward_and_a_missing_reward_model_is_named()
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

        // The default reward is the run's reward model; this run has none.
        r = RlhfProcess.Run("ppo", "--set", $"model={model}", "--set", $"ppo_prompts={prompts}", "--out", Path.Combine(_dir.Path, "run2"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("run 'rlhf rm'", r.Stderr);
    }

    [Fact]
    public void Ppo_on_t5_trains_a_separate_t5_critic_with_ptx_and_ema_and_a_lora_t5_reward_model_rewards_it()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        var pairs = Path.Combine(_dir.Path, "pairs.jsonl");
        File.WriteAllLines(pairs, Enumerable.Range(0, 8).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "chosen": "d0 e{{i % 3}}", "rejected": "f1 g1"}"""));
        var demos = Path.Combine(_dir.Path, "demos.jsonl");
        File.WriteAllLines(demos, Enumerable.Range(0, 4).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "completion": "d0 e{{i % 3}}"}"""));
        var prompts = Path.Combine(_dir.Path, "prompts.jsonl");
        File.WriteAllLines(prompts, Enumerable.Range(0, 4).Select(i => $$"""{"prompt": "a0 b0 c{{i}}"}"""));
        var run = Path.Combine(_dir.Path, "run");
        // rm.lora on T5: a PEFT SEQ_CLS folder, the default reward of the run's PPO.
        var r = RlhfProcess.Run("rm", "--set", $"model={model}", "--set", $"rm_data={pairs}", "--set", "rm.epochs=1", "--set", "rm.prompts_per_batch=4",
            "--set", "rm.lora={}", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(run, "rm", "checkpoint", "adapter_config.json")));

        r = RlhfProcess.Run("ppo", "--set", $"model={model}", "--set", $"ppo_prompts={prompts}", "--set", $"sft_data={demos}",
            "--set", "ppo.steps=2", "--set", "ppo.rollout_batch_size=4", "--set", "ppo.mini_batch_size=2", "--set", "ppo.max_new_tokens=5",
            "--set", "ppo.critic=separate_from_reward_model", "--set", "ppo.ptx_coef=0.5", "--set", "ppo.ema_beta=0.9", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.DoesNotContain("value_head", r.Stderr);
        var rows = File.ReadAllLines(Path.Combine(run, "ppo", "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, row =>
        {
            Assert.True((double)row["grad_norm_critic"]! > 0, row.ToJsonString()); // the separate critic trained
            Assert.True(double.IsFinite((double)row["ptx_loss"]!) && (double)row["ptx_loss"]! > 0, row.ToJsonString());
            Assert.True(double.IsFinite((double)row["reward_mean"]!) && (double)row["reward_mean"]! != 0, row.ToJsonString());
        });
        Assert.True(File.Exists(Path.Combine(run, "ppo", "checkpoint", "model.safetensors")));
    }

    [Fact]
    public void Rm_on_t5_trains_a_t5_for_sequence_classification_saves_transformers_keys_and_rewards_t5_grpo()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        var pairs = Path.Combine(_dir.Path, "pairs.jsonl");
        File.WriteAllLines(pairs, Enumerable.Range(0, 8).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "chosen": "d0 e{{i % 3}}", "rejected": "f1 g1"}"""));
        var run = Path.Combine(_dir.Path, "run");
        var r = RlhfProcess.Run("rm", "--set", $"model={model}", "--set", $"rm_data={pairs}", "--set", "rm.epochs=3", "--set", "rm.prompts_per_batch=2",
            "--set", "rm.optimizer.learning_rate=0.003", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("eval_accuracy:", r.Stdout);
        var checkpoint = Path.Combine(run, "rm", "checkpoint");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "config.json")))!;
        Assert.Equal("T5ForSequenceClassification", (string)config["architectures"]![0]!);
        Assert.True((bool)config["normalize_reward"]!);
        var keys = RlhfSharp.Checkpoints.SafeTensorsHeader.Read(Path.Combine(checkpoint, "model.safetensors")).Entries.Select(e => e.Name).ToList();
        Assert.Contains("transformer.shared.weight", keys);
        Assert.Contains("classification_head.out_proj.bias", keys);
        Assert.All(keys, k => Assert.True(k.StartsWith("transformer.", StringComparison.Ordinal) || k.StartsWith("classification_head.", StringComparison.Ordinal), k));
        Assert.DoesNotContain("transformer.lm_head.weight", keys);
        Assert.True(File.Exists(Path.Combine(checkpoint, "tokenizer.json")));

        // The run's T5 reward model is the default reward of the online stages on the T5 policy: it reads the decoded text.
        var prompts = Path.Combine(_dir.Path, "prompts.jsonl");
        File.WriteAllLines(prompts, Enumerable.Range(0, 4).Select(i => $$"""{"prompt": "a0 b0 c{{i}}"}"""));
        r = RlhfProcess.Run("grpo", "--set", $"model={model}", "--set", $"ppo_prompts={prompts}", "--set", "grpo.steps=1", "--set", "grpo.prompts_per_step=2",
            "--set", "grpo.group_size=2", "--set", "grpo.max_new_tokens=5", "--set", "grpo.mini_batch_size=4", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(double.IsFinite(Number(r.Stdout, "reward_mean")) && Number(r.Stdout, "reward_mean") != 0, r.Stdout);
    }

    [Fact]
    public void Grpo_on_t5_trains_on_a_text_reward_into_its_stage_folder()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        var prompts = Path.Combine(_dir.Path, "prompts.jsonl");
        File.WriteAllLines(prompts, Enumerable.Range(0, 4).Select(i => $$"""{"prompt": "a0 b0 c{{i}}"}"""));
        var run = Path.Combine(_dir.Path, "run");
        var r = RlhfProcess.Run("rloo", "--set", $"model={model}", "--set", $"ppo_prompts={prompts}", "--set", """rewards=[{"source": "keyword", "pattern": "a0"}]""",
            "--set", "grpo.steps=2", "--set", "grpo.prompts_per_step=2", "--set", "grpo.group_size=2", "--set", "grpo.max_new_tokens=6",
            "--set", "grpo.mini_batch_size=4", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("reward_mean:", r.Stdout);
        Assert.True(File.Exists(Path.Combine(run, "rloo", "checkpoint", "model.safetensors")));
        Assert.Equal(2, File.ReadAllLines(Path.Combine(run, "rloo", "metrics.jsonl")).Length);
    }

    [Fact]
    public void Kto_on_t5_trains_on_unpaired_pairs_and_raises_the_desirable_reward()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        var pairs = Path.Combine(_dir.Path, "pairs.jsonl");
        File.WriteAllLines(pairs, Enumerable.Range(0, 6).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "chosen": "d0 e{{i % 3}}", "rejected": "f1 g1"}"""));
        var run = Path.Combine(_dir.Path, "run");
        var r = RlhfProcess.Run("kto", "--set", $"model={model}", "--set", $"dpo_data={pairs}", "--set", "dpo.epochs=3", "--set", "dpo.batch_size=2",
            "--set", "dpo.beta=0.5", "--set", "dpo.optimizer.learning_rate=0.01", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(Number(r.Stdout, "eval_margin") > 0, r.Stdout);
        Assert.True(File.Exists(Path.Combine(run, "kto", "checkpoint", "model.safetensors")));
    }

    [Fact]
    public void Ilql_on_t5_saves_heads_beside_the_t5_checkpoint_and_generate_decodes_with_heads_as_pytorch()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        var scored = Path.Combine(_dir.Path, "scored.jsonl");
        File.WriteAllLines(scored, Enumerable.Range(0, 8).Select(i => $$"""{"prompt": "a0 b0 c{{i}}", "completion": "{{(i % 2 == 0 ? "d0 e1" : "f1 g1")}}", "reward": {{i % 2}}}"""));
        var run = Path.Combine(_dir.Path, "run");
        var r = RlhfProcess.Run("ilql", "--set", $"model={model}", "--set", $"ilql_data={scored}", "--set", "ilql.epochs=2", "--set", "ilql.batch_size=4",
            "--set", "ilql.max_length=16", "--set", "ilql.max_prompt_length=8", "--out", run);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(double.IsFinite(Number(r.Stdout, "loss")) && double.IsFinite(Number(r.Stdout, "eval_loss")), r.Stdout);
        var checkpoint = Path.Combine(run, "ilql", "checkpoint");
        foreach (var file in new[] { "model.safetensors", "config.json", "tokenizer.json", "ilql_heads.safetensors", "ilql_heads.json" })
            Assert.True(File.Exists(Path.Combine(checkpoint, file)), file);
        var heads = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "ilql_heads.json")))!;
        Assert.Equal(32, (int)heads["hidden_size"]!); // the decoder's d_model
        r = RlhfProcess.Run("generate", "--model", checkpoint, "--prompt", "a0 b0", "--max-new-tokens", "3", "--temperature", "0", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("ILQL heads: decoding with log π + 1·(Q − V)", r.Stderr);

        // Decoding with known heads (fixtures/hf-t5/ilql/generate_ilql.py): the greedy tokens of log π + β·(min target Q − V).
        var c = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "ilql", "expected_ilql.json")))!["cases"]!.AsArray()
            .Single(x => (string)x!["case"]! == "t5v11_tiny_gated")!;
        foreach (var file in new[] { "ilql_heads.safetensors", "ilql_heads.json" })
            File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "ilql", "t5v11_tiny_gated_heads", file), Path.Combine(model, file));
        var prompt = string.Join(",", c["greedy_prompt"]!.AsArray().Select(x => (int)x!));
        foreach (var (beta, key) in new[] { ((string?)null, "greedy_ilql"), ("0", "greedy_lm") })
        {
            var want = c[key]!.AsArray().Select(x => (int)x!).ToArray();
            string[] args = ["generate", "--model", model, "--prompt-ids", prompt, "--max-new-tokens", want.Length.ToString(CultureInfo.InvariantCulture), "--temperature", "0", "--json"];
            r = RlhfProcess.Run(beta is null ? args : [.. args, "--ilql-beta", beta]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal(want, JsonNode.Parse(r.Stdout.Trim())!["new_ids"]!.AsArray().Select(x => (int)x!));
        }
    }

    [Fact]
    public void Eval_on_t5_with_a_t5_reference_reports_the_kl_and_the_head_to_head_win_rate()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        // The reference: the same tokenizer on other weights (the fixture model with a LoRA adapter merged in).
        string reference = Seq2SeqCliTests.T5Folder(Path.Combine(_dir.Path, "ref"));
        File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "lora", "qv_merged", "model.safetensors"), Path.Combine(reference, "model.safetensors"), overwrite: true);
        var data = Path.Combine(_dir.Path, "eval.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 4).Select(i => $$"""{"prompt": "a0 b0 c{{i}}"}"""));
        var output = Path.Combine(_dir.Path, "eval");
        var r = RlhfProcess.Run("eval", "--model", model, "--reference-model", reference, "--data", data, "--out", output, "--max-new-tokens", "5",
            "--reward", "vader");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))!;
        double kl = (double)metrics["kl_to_reference"]!;
        Assert.True(double.IsFinite(kl) && Math.Abs(kl) > 1e-3, $"kl {kl}");
        Assert.InRange((double)metrics["win_rate_vs_reference_model"]!, 0, 1);

        r = RlhfProcess.Run("eval", "--model", model, "--reference-model", HfFixture.BuiltInModel, "--data", data, "--out", output);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("the reference must be a T5 folder", r.Stderr);
    }

    [Fact]
    public void Eval_with_a_t5_reward_model_reports_its_score_of_each_prompt_and_completion()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        // The PyTorch-pinned T5ForSequenceClassification fixture (rm/generate_rm.py) with the model folder's tokenizer.
        string rm = Seq2SeqCliTests.T5Folder(Path.Combine(_dir.Path, "rm"));
        foreach (var name in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "rm", "t5v11_tiny_gated_rm", name), Path.Combine(rm, name), overwrite: true);
        var data = Path.Combine(_dir.Path, "eval.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 3).Select(i => $$"""{"prompt": "a0 b0 c{{i}}"}"""));
        var output = Path.Combine(_dir.Path, "eval");
        var r = RlhfProcess.Run("eval", "--model", model, "--data", data, "--out", output, "--max-new-tokens", "4", "--temperature", "0", "--reward", $"rm:{rm}");
        Assert.True(r.ExitCode == 0, r.Stderr);

        // Each sample's reward is the RM's score of the text prompt + completion, tokenised by the RM's tokenizer, then EOS.
        using var scorer = T5Checkpoint.LoadSequenceClassification(rm);
        var tokenizer = TokenizerLoader.Load(rm);
        var rows = File.ReadAllLines(Path.Combine(output, "samples.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(3, rows.Count);
        foreach (var row in rows)
        {
            int[] ids = [.. tokenizer.Encode((string)row["prompt"]! + (string)row["completion"]!), tokenizer.EosId!.Value];
            double expected = scorer.Rewards(torch.tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length])).item<float>();
            Assert.Equal(expected, (double)row["reward"]!, 5);
        }
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))!;
        Assert.Equal(rows.Average(x => (double)x["reward"]!), (double)metrics["reward_mean"]!, 9);
    }

    [Fact]
    public void Eval_rm_on_a_t5_reward_model_scores_each_pair_as_rlhf_rm_trains_it()
    {
        string rm = Seq2SeqCliTests.T5Folder(Path.Combine(_dir.Path, "rm"));
        foreach (var name in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(AppContext.BaseDirectory, "fixtures", "hf-t5", "rm", "t5v11_tiny_gated_rm", name), Path.Combine(rm, name), overwrite: true);
        var pairs = Enumerable.Range(0, 4).Select(i => ($"a0 b{i}", $" c{i} d0", $" e{i} f1 g2")).ToList();
        var data = Path.Combine(_dir.Path, "pairs.jsonl");
        File.WriteAllLines(data, pairs.Select(p => new JsonObject { ["prompt"] = p.Item1, ["chosen"] = p.Item2, ["rejected"] = p.Item3 }.ToJsonString()));
        var output = Path.Combine(_dir.Path, "rm-eval");
        var r = RlhfProcess.Run("eval-rm", "--model", rm, "--data", data, "--out", output);
        Assert.True(r.ExitCode == 0, r.Stderr);

        // Each response scored as Seq2SeqRewardStage trains it: the text prompt + response in the RM's tokenizer, then EOS.
        using var scorer = T5Checkpoint.LoadSequenceClassification(rm);
        var tokenizer = TokenizerLoader.Load(rm);
        double Score(string prompt, string response)
        {
            int[] ids = [.. tokenizer.Encode(prompt + response), tokenizer.EosId!.Value];
            return scorer.Rewards(torch.tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length])).item<float>();
        }
        var margins = pairs.Select(p => Score(p.Item1, p.Item2) - Score(p.Item1, p.Item3)).ToList();
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")))!;
        Assert.Equal(margins.Average(), (double)metrics["mean_margin"]!, 5);
        Assert.Equal(margins.Count(m => m > 0) / 4.0, (double)metrics["accuracy"]!, 9);
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

        r = RlhfProcess.Run("rs", "--set", $"model={model}", "--out", Path.Combine(_dir.Path, "k"));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("encoder-decoder (T5)", r.Stderr);
    }

    [Fact]
    public void Chat_on_t5_answers_each_turn_from_the_encoder_reading_the_rendered_conversation()
    {
        string model = Seq2SeqCliTests.T5Folder(_dir.Path);
        string saved = Path.Combine(_dir.Path, "chat.json");
        var r = RlhfProcess.RunWithInput("a0 b0\nc1 d2\n/save " + saved + "\n\n", "chat", "--model", model, "--temperature", "0", "--max-new-tokens", "4");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("template plain", r.Stderr);
        var messages = JsonNode.Parse(File.ReadAllText(saved))!["messages"]!.AsArray();
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.Select(m => (string)m!["role"]!));
        // Each reply is the greedy decoder answer to the conversation so far, rendered by the plain template, ended by EOS.
        using var t5 = RlhfSharp.Checkpoints.PretrainedSeq2SeqModel.Load(model);
        var template = RlhfSharp.Tokenization.ChatTemplate.FromName("plain");
        var sampler = new RlhfSharp.Generation.Seq2SeqSampler(t5.Model, t5.Tokenizer);
        var history = new List<RlhfSharp.Tokenization.ChatMessage>();
        for (int turn = 0; turn < 2; turn++)
        {
            history.Add(new("user", (string)messages[2 * turn]!["content"]!));
            var ids = t5.EncodePrompt(template.RenderWithAssistantSpans(history, addGenerationPrompt: true).Text);
            var reply = sampler.Generate([ids], new RlhfSharp.Generation.SamplingOptions { Temperature = 0, MaxNewTokens = 4, Seed = (ulong)turn })[0].Text;
            Assert.Equal(reply, (string)messages[2 * turn + 1]!["content"]!);
            history.Add(new("assistant", reply));
        }
    }
}
