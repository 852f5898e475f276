using System.Text;
using RlhfSharp.Data;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Data;

/// <summary>A malformed row is an error naming file:line and the reason, or, with skipInvalid, a counted skip.</summary>
public class BadRecordTests
{
    private const string Good = "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\"}";

    public static TheoryData<string, string, string> Cases() => new()
    {
        // name, line 2 of a .jsonl file (line 1 is good), what the message must say
        { "invalid JSON", "{\"prompt\": \"P\", \"chosen\": ", "invalid JSON" },
        { "not an object", "[\"P\", \"a\", \"b\"]", "expected a JSON object, got an array" },
        { "missing field", "{\"prompt\": \"P\", \"chosen\": \"a\"}", "missing field \"rejected\"" },
        { "wrong type", "{\"prompt\": \"P\", \"chosen\": 5, \"rejected\": \"b\"}", "field \"chosen\" must be a string, got a number" },
        { "null field", "{\"prompt\": \"P\", \"chosen\": null, \"rejected\": \"b\"}", "field \"chosen\" is null" },
        { "empty string", "{\"prompt\": \"P\", \"chosen\": \"\", \"rejected\": \"b\"}", "field \"chosen\" is an empty string" },
        { "margin not a number", "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\", \"margin\": \"lots\"}", "field \"margin\" must be a number" },
        { "hh prompts differ", "{\"chosen\": \"\\n\\nHuman: A\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: B\\n\\nAssistant: y\"}", "different prompts" },
        { "hh marker on one side", "{\"chosen\": \"\\n\\nHuman: A\\n\\nAssistant: x\", \"rejected\": \"y\"}", "only chosen has" },
        { "unknown fields", "{\"question\": \"P\", \"answer\": \"a\"}", "no known fields for preferences" },
        { "wrong format for the loader", "{\"prompt\": \"P\", \"completion\": \"a\"}", "a PromptCompletion row cannot be read as preferences" },
    };

    [Theory, MemberData(nameof(Cases))]
    public void Malformed_preference_rows_name_file_line_and_reason(string name, string line, string reason)
    {
        _ = name;
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "prefs.jsonl");
        File.WriteAllText(path, Good + "\n" + line + "\n" + Good + "\n");
        var ex = Assert.Throws<RlhfException>(() => DatasetLoader.LoadPreferences(path));
        Assert.StartsWith($"{path}:2: ", ex.Message);
        Assert.Contains(reason, ex.Message);

        var skipped = DatasetLoader.LoadPreferences(path, skipInvalid: true);
        Assert.Equal(2, skipped.Records.Count);
        Assert.Equal(1, skipped.Skipped);
    }

    public static TheoryData<string, string, string> RankingCases() => new()
    {
        { "not a permutation", "{\"prompt\": \"P\", \"responses\": [\"a\", \"b\", \"c\"], \"ranking\": [0, 0, 1]}", "is not a permutation of 0..2" },
        { "index out of range", "{\"prompt\": \"P\", \"responses\": [\"a\", \"b\"], \"ranking\": [1, 2]}", "is not a permutation of 0..1" },
        { "length mismatch", "{\"prompt\": \"P\", \"responses\": [\"a\", \"b\", \"c\"], \"ranking\": [1, 0]}", "has 2 entries for 3 responses" },
        { "one response", "{\"prompt\": \"P\", \"responses\": [\"a\"], \"ranking\": [0]}", "a ranking needs at least 2" },
        { "non-integer rank", "{\"prompt\": \"P\", \"responses\": [\"a\", \"b\"], \"ranking\": [0.5, 1]}", "field \"ranking\"[0] must be an integer" },
        { "responses not a list", "{\"prompt\": \"P\", \"responses\": \"a\", \"ranking\": [0]}", "field \"responses\" must be a list" },
    };

    [Theory, MemberData(nameof(RankingCases))]
    public void Malformed_rankings_name_file_line_and_reason(string name, string line, string reason)
    {
        _ = name;
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "ranks.jsonl");
        File.WriteAllText(path, "{\"prompt\": \"P\", \"responses\": [\"a\", \"b\"], \"ranking\": [1, 0]}\n" + line + "\n");
        var ex = Assert.Throws<RlhfException>(() => DatasetLoader.LoadRankings(path));
        Assert.StartsWith($"{path}:2: ", ex.Message);
        Assert.Contains(reason, ex.Message);
    }

    [Fact]
    public void Invalid_utf8_names_its_line_and_does_not_stop_the_rest()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "bad-utf8.jsonl");
        var bytes = new List<byte>();
        bytes.AddRange(Encoding.UTF8.GetBytes("{\"prompt\": \"ok\"}\n{\"prompt\": \"bad "));
        bytes.AddRange(new byte[] { 0xC3, 0x28, 0xFF });
        bytes.AddRange(Encoding.UTF8.GetBytes("\"}\n{\"prompt\": \"also ok ✓\"}\n"));
        File.WriteAllBytes(path, bytes.ToArray());
        var ex = Assert.Throws<RlhfException>(() => DatasetLoader.LoadPrompts(path));
        Assert.Equal($"{path}:2: not valid UTF-8", ex.Message);
        var result = DatasetLoader.LoadPrompts(path, skipInvalid: true);
        Assert.Equal([new PromptRecord("ok"), new PromptRecord("also ok ✓")], result.Records);
        Assert.Equal(1, result.Skipped);
    }

    [Fact]
    public void A_huge_field_is_refused_naming_the_field()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "huge.jsonl");
        File.WriteAllText(path, "{\"prompt\": \"P\", \"completion\": \"" + new string('a', DatasetLoader.MaxFieldChars + 1) + "\"}\n");
        var ex = Assert.Throws<RlhfException>(() => DatasetLoader.LoadDemonstrations(path));
        Assert.StartsWith($"{path}:1: field \"completion\" has 1,000,001 characters", ex.Message);
    }

    [Fact]
    public void Errors_name_the_mapped_column_as_the_file_spells_it()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "q.jsonl");
        File.WriteAllText(path, "{\"question\": 3, \"answer\": \"a\"}\n");
        var ex = Assert.Throws<RlhfException>(() => DatasetLoader.LoadDemonstrations(path, new FieldMap { PromptField = "question", CompletionField = "answer" }));
        Assert.Equal($"{path}:1: field \"question\" (mapped to prompt) must be a string, got a number", ex.Message);
    }

    [Fact]
    public void Bad_messages_name_the_turn()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "m.jsonl");
        File.WriteAllText(path,
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"bot\", \"content\": \"yo\"}]}\n" +
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n" +
            "{\"messages\": [{\"role\": \"user\"}]}\n");
        var ex = Assert.Throws<RlhfException>(() => DatasetLoader.LoadDemonstrations(path));
        Assert.Equal($"{path}:1: field \"messages\"[1].role is \"bot\"; expected system, user or assistant", ex.Message);
        Assert.Equal(3, DatasetLoader.LoadDemonstrations(path, skipInvalid: true).Skipped);
    }

    [Fact]
    public void Kto_label_must_be_boolean()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "k.csv");
        File.WriteAllText(path, "prompt,completion,label\nP,yes,true\nP,no,0\nP,eh,maybe\n");
        var ex = Assert.Throws<RlhfException>(() => DatasetLoader.LoadLabeled(path));
        Assert.Equal($"{path}:4: field \"label\" must be true or false, got \"maybe\"", ex.Message);
        var result = DatasetLoader.LoadLabeled(path, skipInvalid: true);
        Assert.Equal([new LabeledCompletion("P", "yes", true), new LabeledCompletion("P", "no", false)], result.Records);
        Assert.Equal(1, result.Skipped);
    }

    [Fact]
    public void Csv_rows_with_the_wrong_field_count_name_their_first_line()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "pc.csv");
        File.WriteAllText(path, "prompt,completion\n\"multi\nline\",ok\nonly-one-field\n");
        var ex = Assert.Throws<RlhfException>(() => DatasetLoader.LoadDemonstrations(path));
        Assert.Equal($"{path}:4: the row has 1 fields but the header has 2", ex.Message);
        var result = DatasetLoader.LoadDemonstrations(path, skipInvalid: true);
        Assert.Equal([new Demonstration("multi\nline", "ok")], result.Records);
        Assert.Equal(1, result.Skipped);
    }

    [Fact]
    public void Skip_invalid_counts_every_bad_row()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "mixed.jsonl");
        File.WriteAllText(path, string.Join("\n",
            "{\"prompt\": \"a\", \"completion\": \"1\"}",
            "not json",
            "",
            "{\"prompt\": \"b\", \"completion\": \"\"}",
            "{\"prompt\": \"c\", \"completion\": \"3\"}",
            "{\"prompt\": 4, \"completion\": \"4\"}",
            "{\"prompt\": \"e\", \"completion\": \"5\"}"));
        var result = DatasetLoader.LoadDemonstrations(path, skipInvalid: true);
        Assert.Equal(["a", "c", "e"], result.Records.Select(d => d.Prompt));
        Assert.Equal(3, result.Skipped);
    }

    [Fact]
    public void File_level_problems_always_throw()
    {
        using var dir = new TempDir();
        Assert.Contains("dataset file not found", Assert.Throws<RlhfException>(() => DatasetLoader.LoadTexts(Path.Combine(dir.Path, "nope.jsonl"))).Message);
        var txt = Path.Combine(dir.Path, "data.txt");
        File.WriteAllText(txt, "hello");
        Assert.Contains("unknown dataset format", Assert.Throws<RlhfException>(() => DatasetLoader.LoadTexts(txt, skipInvalid: true)).Message);
        var json = Path.Combine(dir.Path, "scalar.json");
        File.WriteAllText(json, "42");
        Assert.StartsWith($"{json}:1: expected a JSON array", Assert.Throws<RlhfException>(() => DatasetLoader.LoadTexts(json, skipInvalid: true)).Message);
    }
}
