using Microsoft.Data.Sqlite;
using RlhfSharp.Data;
using RlhfSharp.Labeling;
using RlhfSharp.Tests.Cli;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Labeling;

/// <summary>Every export format read back by the loader its training command uses.</summary>
public class LabelExportTests : IDisposable
{
    readonly TempDir dir = new();
    public void Dispose() { SqliteConnection.ClearAllPools(); dir.Dispose(); }

    string Db => Path.Combine(dir.Path, "labels.db");

    /// <summary>One item of each task, labelled: a ranking by two annotators, a pair choice, ratings and a demonstration.</summary>
    LabelStore Labelled()
    {
        var store = LabelStore.Open(Db);
        store.AddItem("Tell a story about \"Tom\"", ["A", "B <b>", "C", "D\nline"], LabelTask.Rank, 2, "test");
        store.AddItem("Which?", ["yes", "no"], LabelTask.Pair, 1, "test");
        store.AddItem("Rate", ["good one", "bad one", "meh one"], LabelTask.Rate, 1, "test");
        store.AddItem("Write", ["draft"], LabelTask.Demonstrate, 1, "test");
        var a = store.Authenticate(store.AddAnnotator("a"))!;
        var b = store.Authenticate(store.AddAnnotator("b"))!;
        long Id(Assignment x, string text) => x.Responses.Single(r => r.Text == text).Id;

        var r1 = store.Next(a, LabelTask.Rank)!;
        store.Submit(a, "1", new LabelSubmission { AssignmentId = r1.AssignmentId, Ranking = [Id(r1, "C"), Id(r1, "A"), Id(r1, "D\nline"), Id(r1, "B <b>")] });
        var r2 = store.Next(b, LabelTask.Rank)!;
        store.Submit(b, "1", new LabelSubmission { AssignmentId = r2.AssignmentId, Ranking = [Id(r2, "A"), Id(r2, "B <b>"), Id(r2, "C"), Id(r2, "D\nline")] });
        var p = store.Next(a, LabelTask.Pair)!;
        store.Submit(a, "2", new LabelSubmission { AssignmentId = p.AssignmentId, Choice = Id(p, "no") });
        var q = store.Next(a, LabelTask.Rate)!;
        store.Submit(a, "3", new LabelSubmission
        {
            AssignmentId = q.AssignmentId,
            Ratings = [new(Id(q, "good one"), 6, []), new(Id(q, "bad one"), 6, ["harmful"]), new(Id(q, "meh one"), 4, [])],
        });
        var d = store.Next(a, LabelTask.Demonstrate)!;
        Assert.Equal("draft", d.Responses.Single().Text);
        store.Submit(a, "4", new LabelSubmission { AssignmentId = d.AssignmentId, Demonstration = "Once upon a time, Tom was kind." });
        return store;
    }

    string Export(LabelStore store, string format)
    {
        string path = Path.Combine(dir.Path, format + ".jsonl");
        LabelExport.Write(store.Labels(), LabelExport.Parse(format), path);
        return path;
    }

    [Fact]
    public void Kwise_export_loads_as_the_annotators_rankings()
    {
        var rankings = DatasetLoader.LoadRankings(Export(Labelled(), "kwise")).Records;
        Assert.Equal(3, rankings.Count);
        Assert.Equal(["C", "A", "D\nline", "B <b>"], rankings[0].Responses);
        Assert.Equal(["A", "B <b>", "C", "D\nline"], rankings[1].Responses);
        Assert.Equal(["no", "yes"], rankings[2].Responses);
        Assert.Equal("Tell a story about \"Tom\"", rankings[0].Prompt);
    }

    [Fact]
    public void Pairwise_export_holds_every_pair_each_ranking_implies()
    {
        var pairs = DatasetLoader.LoadPreferences(Export(Labelled(), "pairwise")).Records;
        Assert.Equal(6 + 6 + 1, pairs.Count);
        Assert.Equal(new Preference("Tell a story about \"Tom\"", "C", "A"), pairs[0]);
        Assert.Equal(new Preference("Which?", "no", "yes"), pairs[^1]);
    }

    [Fact]
    public void Sft_and_kto_exports_load_as_demonstrations_and_labelled_completions()
    {
        var store = Labelled();
        var demo = Assert.Single(DatasetLoader.LoadDemonstrations(Export(store, "sft")).Records);
        Assert.Equal(("Write", "Once upon a time, Tom was kind."), (demo.Prompt, demo.Completion));
        // Quality 6 unflagged is desirable; flagged is undesirable whatever its quality; 4 is neither and left out.
        var kto = DatasetLoader.LoadLabeled(Export(store, "kto")).Records;
        Assert.Equal([new LabeledCompletion("Rate", "good one", true), new LabeledCompletion("Rate", "bad one", false)], kto);
    }

    [Fact]
    public void Export_command_writes_the_file_and_refuses_an_unknown_format()
    {
        Labelled();
        SqliteConnection.ClearAllPools();
        string output = Path.Combine(dir.Path, "out.jsonl");
        var ok = RlhfProcess.Run("label", "export", "--db", Db, "--format", "pairwise", "--out", output);
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.Equal("wrote 13 pairwise rows to " + output, ok.Stdout.Trim());
        Assert.Equal(13, File.ReadAllLines(output).Length);
        var bad = RlhfProcess.Run("label", "export", "--db", Db, "--format", "csv", "--out", output);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("unknown export format \"csv\"", bad.Stderr);
        var missing = RlhfProcess.Run("label", "export", "--db", Path.Combine(dir.Path, "none.db"), "--format", "sft", "--out", output);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("label database not found", missing.Stderr);
    }

    [Fact]
    public void Import_command_adds_items_by_row_shape_and_names_the_line_of_a_bad_row()
    {
        string file = Path.Combine(dir.Path, "items.jsonl");
        File.WriteAllLines(file,
        [
            """{"prompt":"p1","responses":["a","b","c"]}""",
            """{"prompt":"p2","chosen":"x","rejected":"y"}""",
            """{"prompt":"p3","completion":"z"}""",
            """{"prompt":"p4"}""",
        ]);
        var ok = RlhfProcess.Run("label", "import", "--db", Db, "--file", file);
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.Equal("added 4 items (0 already there)", ok.Stdout.Trim());
        SqliteConnection.ClearAllPools();
        var counts = LabelStore.Open(Db).TaskCounts().ToDictionary(t => t.Task, t => t.Items);
        Assert.Equal(new Dictionary<string, long> { ["demo"] = 1, ["pair"] = 1, ["rank"] = 1, ["rate"] = 1 }, counts);

        File.AppendAllText(file, """{"prompt":"p5","responses":["same","same"]}""" + "\n");
        var bad = RlhfProcess.Run("label", "import", "--db", Db, "--file", file);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("items.jsonl:5: two responses are the same text", bad.Stderr);
    }
}

public class LabelCommandHelpTests
{
    [Fact]
    public void Every_label_subcommand_has_help_naming_its_options()
    {
        foreach (var (sub, option) in new[] { ("serve", "--db"), ("add-annotator", "--admin"), ("import", "--file"), ("export", "--format"), ("simulate", "--token") })
        {
            var r = RlhfProcess.Run("label", sub, "--help");
            Assert.Equal(0, r.ExitCode);
            Assert.Contains(option, r.Stdout);
        }
    }
}
