using System.Text.Json.Nodes;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Cli;

/// <summary><c>rlhf tokenize</c>: ids, tokens and round-trip text; expected ids from tokenizers.js (fixtures/tokenizers/expected).</summary>
public sealed class TokenizeCliTests : IDisposable
{
    private readonly RealTokenizerFiles _files = new();
    public void Dispose() => _files.Dispose();

    [Fact]
    public void Tokenize_json_prints_the_tokenizers_js_ids_tokens_and_round_trip_text_for_gpt2()
    {
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(RealTokenizerFiles.FixtureDir, "expected", "gpt2.json")))!["cases"]![1]!;
        var text = (string)expected["text"]!; // "Hello <|endoftext|> world"
        var r = RlhfProcess.Run("tokenize", "--model", _files.Folder("gpt2"), "--text", text, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var output = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(expected["ids"]!.AsArray().Select(x => (int)x!), output["ids"]!.AsArray().Select(x => (int)x!));
        Assert.Equal(expected["tokens"]!.AsArray().Select(x => (string)x!), output["tokens"]!.AsArray().Select(x => (string)x!));
        Assert.Equal(text, (string)output["text"]!);
    }

    [Fact]
    public void Tokenize_reads_a_file_and_the_built_in_model_adds_bos()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "in.txt");
        File.WriteAllText(path, "Once upon a time");
        var r = RlhfProcess.Run("tokenize", "--file", path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.StartsWith("ids (", r.Stdout);
        Assert.Contains("ids (5): 1 ", r.Stdout.Split('\n')[0] + " ");
        Assert.Contains("text: <s>Once upon a time", r.Stdout);
    }

    [Fact]
    public void Tokenize_without_text_or_file_is_a_one_line_error()
    {
        var r = RlhfProcess.Run("tokenize");
        Assert.Equal(1, r.ExitCode);
        // The CLI's stderr opens with its oneMKL status line (issue #17); the problem itself is one error line.
        Assert.Single(r.Stderr.Split('\n'), l => l.StartsWith("error: give exactly one of --text or --file"));
        Assert.DoesNotContain("Exception", r.Stderr);
    }
}
