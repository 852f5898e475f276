using RlhfSharp.Data;
using RlhfSharp.Tests.Serve;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Cli;

/// <summary><c>rlhf synth</c> as a user runs it, against the project's own <c>rlhf serve</c>.</summary>
public sealed class SynthCliTests(ServeFixture serve) : IClassFixture<ServeFixture>
{
    [Fact]
    public void Synth_demos_writes_sft_rows_and_a_rerun_pays_nothing()
    {
        using var dir = new TempDir();
        string prompts = Path.Combine(dir.Path, "prompts.txt"), output = Path.Combine(dir.Path, "demos.jsonl");
        File.WriteAllLines(prompts, ["Once upon a time", "The cat sat"]);
        Environment.SetEnvironmentVariable("RLHF_SYNTH_CLI_KEY", ServeFixture.ApiKey); // inherited by the child process
        string[] args = ["synth", "demos", "--base-url", serve.BaseUri.ToString(), "--teacher-model", "stories260k", "--api-key-env", "RLHF_SYNTH_CLI_KEY",
            "--prompts", prompts, "--out", output, "--max-tokens", "16", "--temperature", "0"];
        var first = RlhfProcess.Run(args);
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Contains("2 demonstrations", first.Stdout);
        Assert.Contains("2 requests, ", first.Stdout);
        Assert.Equal(2, DatasetLoader.LoadDemonstrations(output).Records.Count);
        var again = RlhfProcess.Run(args);
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Contains("0 requests, 0 prompt + 0 completion tokens", again.Stdout);
    }

    [Fact]
    public void Synth_names_a_base_url_without_a_scheme_and_a_missing_candidates_source()
    {
        var r = RlhfProcess.Run("synth", "demos", "--base-url", "127.0.0.1:8000", "--teacher-model", "m", "--prompts", "x.txt", "--out", "o.jsonl");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--base-url 127.0.0.1:8000: not an http:// or https:// URL", r.Stderr);
        r = RlhfProcess.Run("synth", "feedback", "--base-url", "http://127.0.0.1:9/v1", "--teacher-model", "m", "--out", "o.jsonl");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("give --candidates FILE, or --policy MODEL with --prompts FILE", r.Stderr);
    }
}
