using System.Text.Json.Nodes;
using RlhfSharp.Evaluation;
using RlhfSharp.Tests.Cli;

namespace RlhfSharp.Tests.Evaluation;

/// <summary>Issue 15, <c>rlhf eval</c>: rows lacking a reference no longer hide the reference metrics of all rows; --field renames columns.</summary>
public sealed class EvalReferenceRowsTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-eval-refs-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Fact]
    public void Rows_without_a_reference_are_counted_and_the_others_are_scored()
    {
        string data = Path.Combine(tmp, "mixed.jsonl");
        File.WriteAllLines(data,
        [
            """{"prompt": "Once upon a time", "reference": " there was a little girl named Lily."}""",
            """{"prompt": "Tom had a ball"}""",
            """{"prompt": "The sun was", "reference": " big and warm."}""",
        ]);
        string dir = Path.Combine(tmp, "out");
        var r = RlhfProcess.Run("eval", "--model", "stories260k", "--data", data, "--max-new-tokens", "8", "--reward", "vader", "--out", dir);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!.AsObject();
        Assert.Equal(3, metrics["samples"]!.GetValue<double>());
        Assert.Equal(2, metrics["reference_rows"]!.GetValue<double>());
        Assert.Equal(1, metrics["rows_without_reference"]!.GetValue<double>());
        Assert.Contains("1 of 3 rows have no reference", r.Stderr);
        // BLEU over exactly the two rows with a reference, from the completions the run wrote.
        var samples = File.ReadAllLines(Path.Combine(dir, "samples.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        var scored = samples.Where(s => s["reference"] is not null).ToList();
        Assert.Equal(2, scored.Count);
        double bleu = SacreBleu.Corpus(scored.Select(s => (string)s["completion"]!).ToList(), scored.Select(s => (IReadOnlyList<string>)[(string)s["reference"]!]).ToList()).Score;
        Assert.Equal(bleu, metrics["bleu"]!.GetValue<double>(), 9);
        foreach (var key in new[] { "chrf", "ter", "rouge1", "rougeL", "meteor", "win_rate_vs_reference" }) Assert.True(metrics.ContainsKey(key), key);
    }

    [Fact]
    public void Field_option_reads_prompts_and_references_from_other_columns()
    {
        string data = Path.Combine(tmp, "qa.jsonl");
        File.WriteAllLines(data, ["""{"question": "Once upon a time", "answer": " there was a dog."}""", """{"question": "Tom had a ball", "answer": " and a cat."}"""]);
        var refused = RlhfProcess.Run("eval", "--model", "stories260k", "--data", data, "--max-new-tokens", "4", "--out", Path.Combine(tmp, "no"));
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("--field prompt=question", refused.Stderr);
        string dir = Path.Combine(tmp, "qa");
        var r = RlhfProcess.Run("eval", "--model", "stories260k", "--data", data, "--max-new-tokens", "4", "--field", "prompt=question", "--field", "reference=answer", "--out", dir);
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        var samples = File.ReadAllLines(Path.Combine(dir, "samples.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(["Once upon a time", "Tom had a ball"], samples.Select(s => (string)s["prompt"]!));
        Assert.Equal([" there was a dog.", " and a cat."], samples.Select(s => (string)s["reference"]!));
        Assert.Contains("'answers' is not a field", RlhfProcess.Run("eval", "--data", data, "--field", "answers=answer").Stderr);
    }
}
