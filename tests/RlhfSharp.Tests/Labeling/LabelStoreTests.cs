using Microsoft.Data.Sqlite;
using RlhfSharp.Labeling;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Labeling;

public class LabelStoreTests : IDisposable
{
    readonly TempDir dir = new();
    string Db => Path.Combine(dir.Path, "labels.db");

    public void Dispose() { SqliteConnection.ClearAllPools(); dir.Dispose(); }

    static Annotator Who(LabelStore store, string token) => store.Authenticate(token)!;

    [Fact]
    public void A_version_1_database_is_migrated_to_the_latest_schema_and_keeps_its_rows()
    {
        var old = LabelStore.Open(Db, schemaVersion: 1);
        Assert.Equal(1, old.SchemaVersion);
        old.AddItem("p", ["a", "b"], LabelTask.Pair, 2, "test");
        SqliteConnection.ClearAllPools();

        var store = LabelStore.Open(Db);
        Assert.Equal(SchemaMigrations.Latest, store.SchemaVersion);
        Assert.Equal(3, SchemaMigrations.Latest);
        Assert.Equal(1, store.RowCounts()["items"]);
        using var c = new SqliteConnection($"Data Source={Db}");
        c.Open();
        using var q = c.CreateCommand();
        q.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'labels_by_item'";
        Assert.Equal(1L, q.ExecuteScalar());
        q.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", q.ExecuteScalar());
    }

    [Fact]
    public void A_database_newer_than_this_program_is_refused()
    {
        LabelStore.Open(Db);
        using (var c = new SqliteConnection($"Data Source={Db}"))
        {
            c.Open();
            using var q = c.CreateCommand();
            q.CommandText = "PRAGMA user_version = 99";
            q.ExecuteNonQuery();
        }
        SqliteConnection.ClearAllPools();
        var e = Assert.Throws<RlhfException>(() => LabelStore.Open(Db));
        Assert.Contains("schema version 99", e.Message);
    }

    [Fact]
    public void Tokens_are_stored_only_as_hashes_and_names_are_unique()
    {
        var store = LabelStore.Open(Db);
        string token = store.AddAnnotator("ann");
        Assert.StartsWith("rlhf_", token);
        Assert.Equal("ann", store.Authenticate(token)!.Name);
        Assert.Null(store.Authenticate(token + "x"));
        Assert.DoesNotContain(token, File.ReadAllText(Db + "-wal", System.Text.Encoding.Latin1) + File.ReadAllText(Db, System.Text.Encoding.Latin1));
        Assert.Throws<RlhfException>(() => store.AddAnnotator("ann"));
    }

    [Fact]
    public void Each_item_goes_to_its_wanted_number_of_different_annotators()
    {
        var store = LabelStore.Open(Db);
        store.AddItem("p1", ["a", "b"], LabelTask.Pair, 2, "test");
        store.AddItem("p2", ["c", "d"], LabelTask.Pair, 2, "test");
        var (a, b, c) = (Who(store, store.AddAnnotator("a")), Who(store, store.AddAnnotator("b")), Who(store, store.AddAnnotator("c")));

        var a1 = store.Next(a)!;
        Assert.Equal("p1", a1.Prompt);
        var again = store.Next(a)!; // an open assignment is handed back, in the same order, not a new one
        Assert.Equal(a1.AssignmentId, again.AssignmentId);
        Assert.Equal(a1.Responses, again.Responses);
        Assert.Equal(SubmitStatus.Stored, store.Submit(a, "k1", new LabelSubmission { AssignmentId = a1.AssignmentId, Choice = a1.Responses[0].Id }).Status);
        Assert.Equal("p2", store.Next(a)!.Prompt);
        Assert.Equal("p1", store.Next(b)!.Prompt);
        // p1 has its two annotators (one done, one open): c gets p2, then nothing.
        var c1 = store.Next(c)!;
        Assert.Equal("p2", c1.Prompt);
        store.Submit(c, "k1", new LabelSubmission { AssignmentId = c1.AssignmentId, Choice = c1.Responses[1].Id });
        Assert.Null(store.Next(c));
        var progress = store.Progress(c);
        Assert.Equal(("c", false, 1L, 0L), (progress.Name, progress.Admin, progress.Labels, progress.Available));
        Assert.Equal(1, progress.HeldByOthers); // p1 lacks a label, but b's open assignment holds its second place

    }

    [Fact]
    public void The_same_idempotency_key_stores_a_label_once()
    {
        var store = LabelStore.Open(Db);
        TestItems(store);
        var a = Who(store, store.AddAnnotator("a"));
        var first = store.Next(a, LabelTask.Rank)!;
        var label = new LabelSubmission { AssignmentId = first.AssignmentId, Ranking = first.Responses.Select(r => r.Id).ToArray() };
        var stored = store.Submit(a, "key-1", label);
        var retry = store.Submit(a, "key-1", label);
        Assert.Equal(SubmitStatus.Stored, stored.Status);
        Assert.Equal(SubmitStatus.Duplicate, retry.Status);
        Assert.Equal(stored.LabelId, retry.LabelId);
        Assert.Equal(1, store.RowCounts()["labels"]);
        // A new key for a labelled assignment is a conflict; an old key with another body (another assignment, another
        // ranking) is a reused key (422: the IETF idempotency-key draft, issue #16).
        Assert.Equal(SubmitStatus.Conflict, store.Submit(a, "key-2", label).Status);
        var second = store.Next(a, LabelTask.Pair)!;
        Assert.Equal(SubmitStatus.KeyReused, store.Submit(a, "key-1", new LabelSubmission { AssignmentId = second.AssignmentId, Choice = second.Responses[0].Id }).Status);
        Assert.Equal(SubmitStatus.KeyReused, store.Submit(a, "key-1", label with { Ranking = [.. label.Ranking!.Reverse()] }).Status);
        Assert.Equal(1, store.RowCounts()["labels"]);
    }

    static void TestItems(LabelStore store)
    {
        store.AddItem("rank me", ["r1", "r2", "r3"], LabelTask.Rank, 3, "test");
        store.AddItem("pick one", ["p1", "p2"], LabelTask.Pair, 3, "test");
        store.AddItem("rate these", ["q1", "q2"], LabelTask.Rate, 3, "test");
        store.AddItem("write", [], LabelTask.Demonstrate, 3, "test");
    }

    public static TheoryData<string, string> BadLabels => new()
    {
        { "rank", """{"ranking":[RESPONSES_0, RESPONSES_1]}""" },              // not every response
        { "rank", """{"ranking":[RESPONSES_0, RESPONSES_0, RESPONSES_1]}""" }, // one twice
        { "rank", """{"choice":RESPONSES_0}""" },                              // another task's field
        { "pair", """{"choice":123456}""" },                                   // not the item's response
        { "pair", """{"choice":RESPONSES_0,"ranking":[RESPONSES_0,RESPONSES_1]}""" }, // two fields
        { "rate", """{"ratings":[{"response_id":RESPONSES_0,"quality":8},{"response_id":RESPONSES_1,"quality":3}]}""" },
        { "rate", """{"ratings":[{"response_id":RESPONSES_0,"quality":2,"flags":["rude"]},{"response_id":RESPONSES_1,"quality":3}]}""" },
        { "rate", """{"ratings":[{"response_id":RESPONSES_0,"quality":2}]}""" },
        { "demo", """{"demonstration":"   "}""" },
        { "demo", """{}""" },
    };

    [Theory]
    [MemberData(nameof(BadLabels))]
    public void Labels_that_do_not_fit_the_task_are_refused_and_store_nothing(string task, string json)
    {
        var store = LabelStore.Open(Db);
        TestItems(store);
        var a = Who(store, store.AddAnnotator("a"));
        var assignment = store.Next(a, LabelTasks.Parse(task))!;
        var ids = assignment.Responses.Select(r => r.Id).ToArray();
        for (int i = 0; i < ids.Length; i++) json = json.Replace($"RESPONSES_{i}", ids[i].ToString());
        var label = System.Text.Json.JsonSerializer.Deserialize<LabelSubmission>(json, LabelSubmission.Json)! with { AssignmentId = assignment.AssignmentId };
        var outcome = store.Submit(a, "k", label);
        Assert.Equal(SubmitStatus.Invalid, outcome.Status);
        Assert.NotNull(outcome.Problem);
        Assert.Equal(0, store.RowCounts()["labels"]);
    }

    [Fact]
    public void An_annotator_cannot_label_another_annotators_assignment()
    {
        var store = LabelStore.Open(Db);
        TestItems(store);
        var (a, b) = (Who(store, store.AddAnnotator("a")), Who(store, store.AddAnnotator("b")));
        var mine = store.Next(a, LabelTask.Pair)!;
        Assert.Equal(SubmitStatus.NotFound, store.Submit(b, "k", new LabelSubmission { AssignmentId = mine.AssignmentId, Choice = mine.Responses[0].Id }).Status);
        Assert.Equal(0, store.RowCounts()["labels"]);
    }

    [Fact]
    public void Importing_the_same_item_twice_adds_it_once_and_bad_items_are_refused()
    {
        var store = LabelStore.Open(Db);
        Assert.True(store.AddItem("p", ["a", "b", "c"], LabelTask.Rank, 2, "test"));
        Assert.False(store.AddItem("p", ["a", "b", "c"], LabelTask.Rank, 2, "test"));
        Assert.Throws<RlhfException>(() => store.AddItem("p", ["a", "a"], LabelTask.Rank, 2, "test"));
        Assert.Throws<RlhfException>(() => store.AddItem("p", ["a", "b", "c"], LabelTask.Pair, 2, "test"));
        Assert.Throws<RlhfException>(() => store.AddItem("p", ["a"], LabelTask.Rank, 2, "test"));
        Assert.Equal(1, store.RowCounts()["items"]);
    }
}
