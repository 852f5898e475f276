using RlhfSharp.Checkpoints;
using RlhfSharp.Lora;
using RlhfSharp.Tests.Cli;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Lora;

/// <summary>The stage commands with <c>--set &lt;stage&gt;.lora=…</c> and <c>rlhf lora merge</c>, run as the real CLI.</summary>
public sealed class LoraCommandTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-lora-cli-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    static string RepoFile(string relative)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx"))) dir = dir.Parent;
        return Path.Combine(dir!.FullName, relative);
    }

    static void AssertAdapterFolder(string dir)
    {
        foreach (var f in new[] { PeftAdapter.ConfigFile, PeftAdapter.WeightsFile, "tokenizer.json" })
            Assert.True(File.Exists(Path.Combine(dir, f)), $"{dir}: {f}");
        Assert.False(File.Exists(Path.Combine(dir, "model.safetensors")), $"{dir} holds a full model");
    }

    [Fact]
    public void Sft_rm_ppo_dpo_chain_on_adapters_then_merge_gives_a_full_checkpoint()
    {
        string run = Path.Combine(tmp, "run"), recipe = RepoFile("recipes/hh-rlhf.json"), demos = Path.Combine(tmp, "demos.jsonl");
        File.WriteAllLines(demos, Enumerable.Range(0, 12).Select(i =>
            $"{{\"prompt\": \"Tell me a story about a {(i % 2 == 0 ? "cat" : "dog")}.\", \"completion\": \" Once upon a time there was a little {(i % 2 == 0 ? "cat" : "dog")} named Tim.\"}}"));
        string[] common = ["--recipe", recipe, "--out", run, "--set", "max_records=16", "--set", $"sft_data={demos}"];
        RlhfProcess.Result Stage(params string[] args)
        {
            var r = RlhfProcess.Run([.. args.Take(1), .. common, .. args.Skip(1)]);
            Assert.True(r.ExitCode == 0, $"rlhf {args[0]}: {r.Stderr}{r.Stdout}");
            return r;
        }
        Stage("sft", "--set", "sft.lora={}", "--set", "sft.epochs=1", "--set", "sft.max_length=96");
        AssertAdapterFolder(Path.Combine(run, "sft", "checkpoint"));
        // stories260k is a llama2.c file: the adapter's base is the run's HF copy of it.
        Assert.Equal(Path.GetFullPath(Path.Combine(run, "base", "checkpoint")), PeftAdapter.ReadInfo(Path.Combine(run, "sft", "checkpoint")).BaseModel);

        Stage("rm", "--set", "rm.lora.r=4", "--set", "rm.max_length=96");
        AssertAdapterFolder(Path.Combine(run, "rm", "checkpoint"));
        Assert.True(PeftAdapter.ReadInfo(Path.Combine(run, "rm", "checkpoint")).ScoreHead);

        Stage("ppo", "--set", "ppo.lora={}", "--set", "ppo.steps=1", "--set", "ppo.rollout_batch_size=4", "--set", "ppo.mini_batch_size=4", "--set", "ppo.max_new_tokens=8");
        AssertAdapterFolder(Path.Combine(run, "ppo", "checkpoint"));

        Stage("dpo", "--set", "dpo.lora={}", "--set", "dpo.epochs=1", "--set", "dpo.max_length=96", "--set", "dpo.max_prompt_length=48");
        string dpo = Path.Combine(run, "dpo", "checkpoint");
        AssertAdapterFolder(dpo);
        Assert.Equal(Path.GetFullPath(Path.Combine(run, "sft", "checkpoint")), PeftAdapter.ReadInfo(dpo).BaseModel); // DPO adapts the SFT model

        string merged = Path.Combine(tmp, "merged");
        var m = RlhfProcess.Run("lora", "merge", "--adapter", dpo, "--out", merged);
        Assert.True(m.ExitCode == 0, m.Stderr);
        foreach (var f in new[] { "config.json", "model.safetensors", "tokenizer.json" }) Assert.True(File.Exists(Path.Combine(merged, f)), f);

        // The merged checkpoint computes what base → SFT adapter (merged) → DPO adapter computes.
        using var full = HuggingFaceCheckpoint.LoadCausalLM(merged);
        using var sftMerged = HuggingFaceCheckpoint.LoadCausalLM(Path.Combine(run, "sft", "checkpoint"));
        PeftAdapter.Attach(sftMerged, dpo);
        sftMerged.eval();
        using var _ = no_grad();
        var ids = tensor(new long[] { 1, 403, 407, 261, 378, 300, 301 }).unsqueeze(0);
        HfFixture.AssertClose(sftMerged.Forward(ids), full.Forward(ids), null, "merged DPO checkpoint vs SFT + DPO adapter");

        var g = RlhfProcess.Run("generate", "--model", dpo, "--prompt", "Once upon a time");
        Assert.True(g.ExitCode == 0, g.Stderr);
        Assert.StartsWith("Once upon a time", g.Stdout.Trim());
    }

    [Fact]
    public void Merge_of_a_missing_base_is_one_clear_error()
    {
        string dir = Path.Combine(tmp, "adapter");
        using (var model = Llama2cCheckpoint.LoadCausalLM(HfFixture.BuiltInModel))
        {
            LoraModel.Attach(model, new LoraConfig());
            PeftAdapter.Save(model, dir, Path.Combine(tmp, "gone"));
        }
        var r = RlhfProcess.Run("lora", "merge", "--adapter", dir, "--out", Path.Combine(tmp, "out"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("base_model_name_or_path", r.Stderr);
        var ok = RlhfProcess.Run("lora", "merge", "--adapter", dir, "--base", "stories260k", "--out", Path.Combine(tmp, "out"));
        Assert.True(ok.ExitCode == 0, ok.Stderr);
    }
}
