using System.Text.Json.Nodes;
using RlhfSharp.Tests.Cli;

namespace RlhfSharp.Tests.Evaluation;

public sealed class EvalCommandEvaluationTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-eval-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Fact]
    public void Eval_with_references_and_vader_writes_every_metric()
    {
        string data = Path.Combine(tmp, "data.jsonl");
        File.WriteAllLines(data,
        [
            """{"prompt": "Once upon a time", "completion": " there was a little girl named Lily."}""",
            """{"prompt": "Tom had a ball", "completion": " and he liked to play with it."}""",
            """{"prompt": "The sun was", "completion": " big and warm."}""",
            """{"prompt": "Lily went to the park", "completion": " with her mom."}""",
            """{"prompt": "This one is not used", "completion": " because of --samples 4."}""",
        ]);
        string dir = Path.Combine(tmp, "out");
        var r = RlhfProcess.Run("eval", "--model", "stories260k", "--data", data, "--samples", "4", "--max-new-tokens", "8",
            "--reward", "vader", "--reference-model", "stories260k", "--out", dir);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!.AsObject();
        foreach (var key in new[] { "samples", "distinct_1", "distinct_2", "self_bleu", "perplexity_samples", "reward_mean", "kl_to_reference",
                     "bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL", "rougeLsum", "meteor", "perplexity_references", "win_rate_vs_reference" })
            Assert.True(metrics.ContainsKey(key), $"metrics.json lacks {key}: {metrics.ToJsonString()}");
        Assert.Equal(4, metrics["samples"]!.GetValue<double>());
        // The reference model is the policy itself, so the sampled KL is exactly zero.
        Assert.Equal(0.0, metrics["kl_to_reference"]!.GetValue<double>(), 1e-5);
        Assert.InRange(metrics["win_rate_vs_reference"]!.GetValue<double>(), 0, 1);
        // Same model, same sampling seed: the reference model writes the very same completions, so every pair ties.
        Assert.Equal(0.5, metrics["win_rate_vs_reference_model"]!.GetValue<double>(), 9);
        Assert.Equal(4, File.ReadAllLines(Path.Combine(dir, "samples.jsonl")).Length);
        Assert.Contains("rougeLsum", File.ReadAllText(Path.Combine(dir, "report.html")));
        Assert.Contains("chrf", r.Stdout);
    }

    [Fact]
    public void Eval_holds_the_reference_model_in_reference_dtype()
    {
        string data = Path.Combine(tmp, "kl.jsonl");
        File.WriteAllLines(data, ["""{"prompt": "Once upon a time"}""", """{"prompt": "Tom had a ball"}"""]);
        string dir = Path.Combine(tmp, "kl");
        var r = RlhfProcess.Run("eval", "--model", "stories260k", "--data", data, "--max-new-tokens", "8",
            "--reference-model", "stories260k", "--reference-dtype", "bf16", "--out", dir);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        double kl = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!["kl_to_reference"]!.GetValue<double>();
        // The reference is the policy rounded to bf16: no longer exactly the policy (KL 0 in float32, the test above),
        // but close, summed over 8 tokens.
        Assert.NotEqual(0.0, kl);
        Assert.InRange(Math.Abs(kl), 0, 0.5);

        r = RlhfProcess.Run("eval", "--model", "stories260k", "--data", data, "--reference-model", "stories260k", "--reference-dtype", "int4", "--out", dir);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--reference-dtype", r.Stderr);
    }

    [Fact]
    public void Eval_on_prompts_only_skips_reference_metrics()
    {
        string data = Path.Combine(tmp, "prompts.jsonl");
        File.WriteAllLines(data, ["""{"prompt": "Once upon a time"}""", """{"prompt": "Tom had a ball"}"""]);
        string dir = Path.Combine(tmp, "out2");
        var r = RlhfProcess.Run("eval", "--model", "stories260k", "--data", data, "--max-new-tokens", "8", "--out", dir);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!.AsObject();
        Assert.True(metrics.ContainsKey("distinct_1"));
        Assert.False(metrics.ContainsKey("bleu"));
        Assert.False(metrics.ContainsKey("reward_mean"));
    }

    [Fact]
    public void Eval_has_help_and_refuses_an_unknown_reward()
    {
        var help = RlhfProcess.Run("eval", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--reference-model", help.Stdout);
        string data = Path.Combine(tmp, "p.jsonl");
        File.WriteAllLines(data, ["""{"prompt": "Once"}"""]);
        var r = RlhfProcess.Run("eval", "--data", data, "--reward", "bleurt", "--out", Path.Combine(tmp, "x"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("bleurt", r.Stderr);
    }
}
