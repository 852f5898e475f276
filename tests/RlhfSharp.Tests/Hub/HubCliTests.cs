using System.Diagnostics;
using System.Text.Json.Nodes;
using RlhfSharp.Tests.Cli;

namespace RlhfSharp.Tests.Hub;

/// <summary>The real <c>rlhf</c> program resolving <c>--model org/name</c> and <c>hf://datasets/…</c> against a loopback mock Hub (HF_ENDPOINT).</summary>
public sealed class HubCliTests : IAsyncLifetime
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-hubcli-").FullName;
    MockHub hub = null!;

    public async Task InitializeAsync() => hub = await MockHub.StartAsync();

    public async Task DisposeAsync()
    {
        await hub.DisposeAsync();
        Directory.Delete(tmp, recursive: true);
    }

    RlhfProcess.Result Rlhf(bool offline, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlhf.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var name in new[] { "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_HOME", "HUGGINGFACE_HUB_CACHE" }) psi.Environment.Remove(name);
        psi.Environment["HF_ENDPOINT"] = hub.Endpoint;
        psi.Environment["HF_HUB_CACHE"] = Path.Combine(tmp, "hub");
        psi.Environment["HF_HOME"] = Path.Combine(tmp, "hf-home"); // no token file from the machine's own login
        if (offline) psi.Environment["HF_HUB_OFFLINE"] = "1";
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(entireProcessTree: true); throw new TimeoutException("rlhf " + string.Join(' ', args)); }
        return new RlhfProcess.Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    static int[] NewIds(RlhfProcess.Result r) => JsonNode.Parse(r.Stdout.Trim())!["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();

    [Fact]
    public void Generate_with_a_hub_model_id_downloads_it_then_runs_offline_from_the_cache()
    {
        // The built-in model as a Hugging Face folder (config, safetensors, tokenizer files) served as kinder/stories260K.
        string folder = Path.Combine(tmp, "stories-hf");
        Assert.Equal(0, RlhfProcess.Run("convert", "--model", "stories260k", "--out", folder).ExitCode);
        hub.Add("kinder/stories260K", folder);
        string[] args = ["generate", "--prompt-ids", "1", "--max-new-tokens", "24", "--temperature", "0", "--json"];

        var builtIn = RlhfProcess.Run([.. args, "--model", "stories260k"]);
        Assert.True(builtIn.ExitCode == 0, builtIn.Stderr);
        var online = Rlhf(false, [.. args, "--model", "kinder/stories260K"]);
        Assert.True(online.ExitCode == 0, online.Stderr);
        Assert.Equal(NewIds(builtIn), NewIds(online));
        Assert.Contains("downloading kinder/stories260K model.safetensors (", online.Stderr); // the progress display
        Assert.Contains(hub.Requests, r => r.Path == "/api/models/kinder/stories260K/revision/main");
        Assert.True(Directory.Exists(Path.Combine(tmp, "hub", "models--kinder--stories260K", "snapshots")));

        int asked = hub.Requests.Count;
        var offline = Rlhf(true, [.. args, "--model", "kinder/stories260K"]);
        Assert.True(offline.ExitCode == 0, offline.Stderr);
        Assert.Equal(NewIds(builtIn), NewIds(offline));
        Assert.Equal(asked, hub.Requests.Count);
        Assert.DoesNotContain("downloading", offline.Stderr);
    }

    [Fact]
    public void Hub_errors_are_one_line_without_a_stack_trace()
    {
        hub.Add("kinder/gated", new Dictionary<string, byte[]> { ["config.json"] = "{}"u8.ToArray() }, token: "hf_secret");
        var missing = Rlhf(false, "generate", "--model", "kinder/missing", "--prompt", "hi");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("error: kinder/missing: no such model repository", missing.Stderr);
        var gated = Rlhf(false, "generate", "--model", "kinder/gated", "--prompt", "hi");
        Assert.Equal(1, gated.ExitCode);
        Assert.Contains("HF_TOKEN", gated.Stderr);
        var offline = Rlhf(true, "generate", "--model", "kinder/gated", "--prompt", "hi");
        Assert.Equal(1, offline.ExitCode);
        Assert.Contains("HF_HUB_OFFLINE", offline.Stderr);
        foreach (var r in new[] { missing, gated, offline })
        {
            Assert.DoesNotContain("   at ", r.Stderr);
            Assert.DoesNotContain("Exception", r.Stderr);
        }
    }

    [Fact]
    public void Eval_reads_its_prompts_from_an_hf_datasets_uri()
    {
        hub.Add("kinder/prompts", new Dictionary<string, byte[]>
        {
            ["eval/prompts.jsonl"] = "{\"prompt\": \"Once upon a time\"}\n{\"prompt\": \"Lily went\"}\n{\"prompt\": \"The sun\"}\n"u8.ToArray(),
        }, dataset: true);
        var r = Rlhf(false, "eval", "--model", "stories260k", "--data", "hf://datasets/kinder/prompts/eval/prompts.jsonl",
            "--max-new-tokens", "8", "--temperature", "0", "--out", Path.Combine(tmp, "eval"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp, "eval", "metrics.json")))!;
        Assert.Equal(3, metrics["samples"]!.GetValue<double>());
        string repoDir = Path.Combine(tmp, "hub", "datasets--kinder--prompts");
        string commit = File.ReadAllText(Path.Combine(repoDir, "refs", "main"));
        Assert.True(File.Exists(Path.Combine(repoDir, "snapshots", commit, "eval", "prompts.jsonl")));
    }
    [Fact]
    public void A_stage_takes_a_hub_model_and_hf_data_through_set()
    {
        string folder = Path.Combine(tmp, "stories-hf");
        Assert.Equal(0, RlhfProcess.Run("convert", "--model", "stories260k", "--out", folder).ExitCode);
        hub.Add("kinder/stories260K", folder);
        var demos = string.Join('\n', Enumerable.Range(0, 8).Select(i =>
            new JsonObject { ["prompt"] = $"Tell story {i}.", ["completion"] = $" Once upon a time there were {i} cats." }.ToJsonString()));
        hub.Add("kinder/demos", new Dictionary<string, byte[]> { ["sft/train.jsonl"] = System.Text.Encoding.UTF8.GetBytes(demos + "\n") }, dataset: true);
        string recipe = Path.Combine(tmp, "recipe.json");
        File.WriteAllText(recipe, """{ "name": "hub", "model": "stories260k", "sft": { "epochs": 1, "batch_size": 4, "max_length": 32 } }""");

        var r = Rlhf(false, "sft", "--recipe", recipe, "--set", "model=kinder/stories260K", "--set", "sft_data=hf://datasets/kinder/demos/sft/train.jsonl",
            "--out", Path.Combine(tmp, "run"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(tmp, "run", "sft", "checkpoint", "model.safetensors")));
        Assert.Contains(hub.Requests, q => q.Path == "/datasets/kinder/demos/resolve/main/sft/train.jsonl");
        Assert.Contains(hub.Requests, q => q.Path == "/api/models/kinder/stories260K/revision/main");
    }
}
