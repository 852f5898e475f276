using RlhfSharp.Data;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Data;

/// <summary>Every row format read from every file type gives the same records.</summary>
public class DatasetFormatTests
{
    public static TheoryData<string> Kinds() => new(DataFiles.Kinds);

    // Commas, quotes, a line break and non-ASCII text, so the CSV quoting and UTF-8 paths are exercised.
    private const string Tricky = "Say \"hi\", then\nwave — ok? ✓";

    [Theory, MemberData(nameof(Kinds))]
    public void Text_rows_load_as_texts(string kind)
    {
        using var dir = new TempDir();
        var path = DataFiles.Write(dir.Path, "t", kind, [new TextRow { text = "Once upon a time." }, new TextRow { text = Tricky }]);
        var result = DatasetLoader.LoadTexts(path);
        Assert.Equal([new TextRecord("Once upon a time."), new TextRecord(Tricky)], result.Records);
        Assert.Equal(0, result.Skipped);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Messages_rows_load_as_conversations(string kind)
    {
        using var dir = new TempDir();
        var row = new MessagesRow { messages = [new Msg { role = "system", content = "Be kind." }, new Msg { role = "user", content = Tricky }, new Msg { role = "assistant", content = "Hi!" }] };
        var path = DataFiles.Write(dir.Path, "m", kind, [row]);
        var d = Assert.Single(DatasetLoader.LoadDemonstrations(path).Records);
        Assert.Equal([new("system", "Be kind."), new("user", Tricky), new("assistant", "Hi!")], d.Messages!);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Prompt_completion_rows_load_as_demonstrations(string kind)
    {
        using var dir = new TempDir();
        var path = DataFiles.Write(dir.Path, "pc", kind, [new PromptCompletionRow { prompt = Tricky, completion = " fine." }]);
        var d = Assert.Single(DatasetLoader.LoadDemonstrations(path).Records);
        Assert.Equal(new Demonstration(Tricky, " fine."), d);
        Assert.Null(d.Messages);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Explicit_preference_rows_keep_prompt_and_margin(string kind)
    {
        using var dir = new TempDir();
        var path = DataFiles.Write(dir.Path, "p", kind, [new PreferenceRow { prompt = "Q:", chosen = " good", rejected = Tricky, margin = 2.5 }]);
        Assert.Equal(new Preference("Q:", " good", Tricky, 2.5), Assert.Single(DatasetLoader.LoadPreferences(path).Records));
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Implicit_hh_preference_rows_split_at_the_last_assistant_turn(string kind)
    {
        using var dir = new TempDir();
        const string prompt = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: A story?\n\nAssistant:";
        var path = DataFiles.Write(dir.Path, "hh", kind, [new ImplicitRow { chosen = prompt + " Once upon a time.", rejected = prompt + " No." }]);
        Assert.Equal(new Preference(prompt, " Once upon a time.", " No."), Assert.Single(DatasetLoader.LoadPreferences(path).Records));
        Assert.Equal(prompt, Assert.Single(DatasetLoader.LoadPrompts(path).Records).Prompt);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Ranking_rows_order_responses_best_first(string kind)
    {
        using var dir = new TempDir();
        var path = DataFiles.Write(dir.Path, "r", kind, [new RankingRow { prompt = "P", responses = ["a", "b", "c"], ranking = [2, 0, 1] }]);
        var r = Assert.Single(DatasetLoader.LoadRankings(path).Records);
        Assert.Equal("P", r.Prompt);
        Assert.Equal(["c", "a", "b"], r.Responses);
        Assert.Equal([new Preference("P", "c", "a"), new Preference("P", "c", "b"), new Preference("P", "a", "b")], r.ToPairs());
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Pairwise_files_load_as_rankings_of_two(string kind)
    {
        using var dir = new TempDir();
        var path = DataFiles.Write(dir.Path, "p", kind, [new PreferenceRow { prompt = "Q", chosen = "good", rejected = "bad" }]);
        var r = Assert.Single(DatasetLoader.LoadRankings(path).Records);
        Assert.Equal(["good", "bad"], r.Responses);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Prompt_only_rows_load_as_prompts(string kind)
    {
        using var dir = new TempDir();
        var path = DataFiles.Write(dir.Path, "po", kind, [new PromptRow { prompt = "Once upon" }, new PromptRow { prompt = Tricky }]);
        Assert.Equal([new PromptRecord("Once upon"), new PromptRecord(Tricky)], DatasetLoader.LoadPrompts(path).Records);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Kto_rows_load_with_their_labels(string kind)
    {
        using var dir = new TempDir();
        var path = DataFiles.Write(dir.Path, "k", kind, [new LabeledRow { prompt = "P", completion = "yes", label = true }, new LabeledRow { prompt = "P", completion = "no", label = false }]);
        Assert.Equal([new LabeledCompletion("P", "yes", true), new LabeledCompletion("P", "no", false)], DatasetLoader.LoadLabeled(path).Records);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void A_field_map_renames_columns(string kind)
    {
        using var dir = new TempDir();
        var path = DataFiles.Write(dir.Path, "q", kind, [new QuestionRow { question = "2+2?", answer = " 4" }]);
        var map = new FieldMap { PromptField = "question", CompletionField = "answer" };
        Assert.Equal(new Demonstration("2+2?", " 4"), Assert.Single(DatasetLoader.LoadDemonstrations(path, map).Records));
    }

    [Fact]
    public void Json_accepts_a_data_wrapper_and_reports_element_lines()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "d.json");
        File.WriteAllText(path, "{\"version\": 1,\n \"data\": [\n  {\"prompt\": \"a\"},\n  {\"prompt\": 3}\n]}");
        var ex = Assert.Throws<RlhfException>(() => DatasetLoader.LoadPrompts(path));
        Assert.StartsWith($"{path}:4: ", ex.Message);
        Assert.Equal([new PromptRecord("a")], DatasetLoader.LoadPrompts(path, skipInvalid: true).Records);
    }

    [Fact]
    public void Preference_files_unpair_into_kto_examples()
    {
        using var dir = new TempDir();
        var path = DataFiles.Write(dir.Path, "p", "jsonl", [new PreferenceRow { prompt = "Q", chosen = "good", rejected = "bad" }]);
        Assert.Equal([new LabeledCompletion("Q", "good", true), new LabeledCompletion("Q", "bad", false)], DatasetLoader.LoadLabeled(path).Records);
    }

    [Fact]
    public void Hh_rlhf_sample_gives_200_preferences_with_assistant_prompts()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "data", "hh-rlhf-helpful-base-sample", "test-first200.jsonl.gz");
        var result = DatasetLoader.LoadPreferences(path);
        Assert.Equal(200, result.Records.Count);
        Assert.Equal(0, result.Skipped);
        Assert.All(result.Records, p =>
        {
            Assert.StartsWith("\n\nHuman:", p.Prompt);
            Assert.EndsWith("\n\nAssistant:", p.Prompt);
            // At most one side continues with an invented turn; the prompt is the one both share.
            Assert.False(p.Chosen.Contains("\n\nAssistant:") && p.Rejected.Contains("\n\nAssistant:"));
        });
        // Line 169: the rejected answer invents "\n\nHumans: …\n\nAssistant: …"; the prompt stops at the real question.
        Assert.Equal("\n\nHuman: What are some famous world music artists?\n\nAssistant:", result.Records[168].Prompt);
        Assert.Contains("\n\nHumans: That’s fine", result.Records[168].Rejected);
        Assert.Equal("\n\nHuman: Do you know why turkeys became the official food of thanksgiving?\n\nAssistant:", result.Records[0].Prompt);
        Assert.StartsWith(" To be honest, I don’t know anything about that.", result.Records[0].Chosen);
    }
}
