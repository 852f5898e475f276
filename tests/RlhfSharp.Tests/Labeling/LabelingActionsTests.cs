using System.Net;
using Microsoft.Data.Sqlite;
using RlhfSharp.Labeling;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Labeling;

/// <summary>Issue 15, the labelling app's missing actions: skip, undo the last label, a tie in pair tasks; and what the annotator's progress says is left.</summary>
public class LabelingActionsTests : IDisposable
{
    readonly TempDir dir = new();
    string Db => Path.Combine(dir.Path, "labels.db");

    public void Dispose() { SqliteConnection.ClearAllPools(); dir.Dispose(); }

    static Annotator Who(LabelStore store, string token) => store.Authenticate(token)!;

    [Fact]
    public void A_skipped_item_frees_its_place_for_another_annotator_and_is_not_offered_again()
    {
        var store = LabelStore.Open(Db);
        store.AddItem("p", ["a", "b", "c"], LabelTask.Rank, 1, "test");
        var (ann, bob) = (Who(store, store.AddAnnotator("ann")), Who(store, store.AddAnnotator("bob")));
        var mine = store.Next(ann)!;
        Assert.Null(store.Next(bob)); // ann's open assignment holds the only place
        Assert.Equal(1, store.Progress(bob).HeldByOthers);

        Assert.Equal(SubmitStatus.Stored, store.Skip(ann, mine.AssignmentId).Status);
        Assert.Equal(SubmitStatus.Duplicate, store.Skip(ann, mine.AssignmentId).Status); // a retried skip is the same skip
        Assert.Null(store.Next(ann));
        var progress = store.Progress(ann);
        Assert.Equal((0L, 1L), (progress.Available, progress.Skipped));
        Assert.Equal(SubmitStatus.Conflict, store.Submit(ann, "k", new LabelSubmission { AssignmentId = mine.AssignmentId, Ranking = mine.Responses.Select(r => r.Id).ToArray() }).Status);
        Assert.Equal("p", store.Next(bob)!.Prompt);
        Assert.Equal(SubmitStatus.NotFound, store.Skip(bob, mine.AssignmentId).Status); // not bob's assignment
    }

    [Fact]
    public void Undo_takes_back_the_last_action_first_a_skip_then_the_label_before_it()
    {
        var store = LabelStore.Open(Db);
        store.AddItem("first", ["x", "y"], LabelTask.Pair, 1, "test");
        store.AddItem("second", ["u", "v"], LabelTask.Pair, 1, "test");
        var ann = Who(store, store.AddAnnotator("ann"));
        Assert.Null(store.Undo(ann));

        var first = store.Next(ann)!;
        long chosen = first.Responses.Single(r => r.Text == "y").Id;
        var stored = store.Submit(ann, "k1", new LabelSubmission { AssignmentId = first.AssignmentId, Choice = chosen });
        var second = store.Next(ann)!;
        Assert.Equal("second", second.Prompt);
        store.Skip(ann, second.AssignmentId);

        var undoSkip = store.Undo(ann)!;
        Assert.Null(undoSkip.LabelId);
        Assert.Null(undoSkip.Previous);
        Assert.Equal(second.AssignmentId, undoSkip.Assignment.AssignmentId);

        var undoLabel = store.Undo(ann)!;
        Assert.Equal(stored.LabelId, undoLabel.LabelId);
        Assert.Equal(first.AssignmentId, undoLabel.Assignment.AssignmentId);
        Assert.Equal(chosen, undoLabel.Previous!.Choice); // comes back as given, to be changed
        Assert.Empty(store.Labels());
        Assert.Equal(2, store.Progress(ann).Available);
        Assert.Null(store.Undo(ann));

        // The reopened assignment takes a new label under a new key.
        long other = first.Responses.Single(r => r.Text == "x").Id;
        Assert.Equal(SubmitStatus.Stored, store.Submit(ann, "k2", new LabelSubmission { AssignmentId = first.AssignmentId, Choice = other }).Status);
        Assert.Equal("x", store.Labels().Single().Text(store.Labels().Single().Body.Choice!.Value));
    }

    [Fact]
    public void A_tie_is_stored_for_pair_items_only_and_left_out_of_the_preference_exports()
    {
        var store = LabelStore.Open(Db);
        store.AddItem("pair", ["one", "two"], LabelTask.Pair, 1, "test");
        store.AddItem("rank", ["a", "b", "c"], LabelTask.Rank, 1, "test");
        var ann = Who(store, store.AddAnnotator("ann"));
        var pair = store.Next(ann, LabelTask.Pair)!;
        var rank = store.Next(ann, LabelTask.Rank)!;
        var refused = store.Submit(ann, "r", new LabelSubmission { AssignmentId = rank.AssignmentId, Tie = true });
        Assert.Equal(SubmitStatus.Invalid, refused.Status);
        Assert.Contains("'tie' is for pair items only", refused.Problem);
        var both = store.Submit(ann, "b", new LabelSubmission { AssignmentId = pair.AssignmentId, Tie = true, Choice = pair.Responses[0].Id });
        Assert.Equal(SubmitStatus.Invalid, both.Status);
        Assert.Equal(SubmitStatus.Stored, store.Submit(ann, "t", new LabelSubmission { AssignmentId = pair.AssignmentId, Tie = true }).Status);

        var label = Assert.Single(store.Labels());
        Assert.True(label.Body.Tie);
        Assert.Null(label.Order);
        Assert.Empty(LabelExport.Rows(store.Labels(), LabelExportFormat.Pairwise));
        Assert.Empty(LabelExport.Rows(store.Labels(), LabelExportFormat.Kwise));
        Assert.Null(Dashboard.Build(store).PairwiseAgreement);
    }

    [Fact]
    public void Progress_counts_what_waits_per_task_so_a_filtered_page_can_say_so()
    {
        var store = LabelStore.Open(Db);
        store.AddItem("r1", ["a", "b"], LabelTask.Rank, 1, "test");
        store.AddItem("r2", ["c", "d"], LabelTask.Rank, 1, "test");
        store.AddItem("q1", ["e"], LabelTask.Rate, 1, "test");
        store.AddItem("w1", [], LabelTask.Demonstrate, 1, "test");
        var ann = Who(store, store.AddAnnotator("ann"));
        var p = store.Progress(ann);
        Assert.Equal(4, p.Available);
        Assert.Equal("demo=1 pair=0 rank=2 rate=1", string.Join(" ", p.AvailableByTask.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}")));
        Assert.Null(store.Next(ann, LabelTask.Pair)); // the filter is empty while 4 items wait elsewhere
    }

    static StoredLabel At(long id, double minutes) =>
        new(id, id, LabelTask.Pair, "p", [new(1, "a"), new(2, "b")], 1, "ann", new LabelSubmission { Choice = 1 }, (long)(minutes * 60_000), "k" + id);

    [Fact]
    public void Dashboard_rates_need_ten_labels_over_ten_minutes()
    {
        // Two labels 11 s apart were shown as 641.5 labels/hour.
        Assert.Null(Dashboard.Rate([At(1, 0), At(2, 11 / 60.0)], 3_600_000));
        // Nine labels over an hour, and twenty in five minutes: still no rate.
        Assert.Null(Dashboard.Rate(Enumerable.Range(0, 9).Select(i => At(i, i * 7.5)).ToList(), 3_600_000));
        Assert.Null(Dashboard.Rate(Enumerable.Range(0, 20).Select(i => At(i, i * 0.25)).ToList(), 3_600_000));
        // Thirteen labels one minute apart: 12 intervals in 12 minutes = 60 an hour, 1 a minute.
        var steady = Enumerable.Range(0, 13).Select(i => At(i, i)).ToList();
        Assert.Equal(60, Dashboard.Rate(steady, 3_600_000)!.Value, 9);
        Assert.Equal(1, Dashboard.Rate(steady, 60_000)!.Value, 9);
    }

    [Fact]
    public async Task Skip_and_undo_work_through_the_api()
    {
        await using var t = await LabelingTestServer.StartAsync(s => s.AddItem("p", ["a", "b"], LabelTask.Pair, 1, "test"));
        var client = t.Client(t.Store.AddAnnotator("ann"));
        Assert.Null(await client.UndoAsync());
        var item = (await client.NextAsync())!;
        await client.SkipAsync(item.AssignmentId);
        Assert.Null(await client.NextAsync());
        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => client.SkipAsync(item.AssignmentId + 1000));
        Assert.Equal(HttpStatusCode.NotFound, ex.StatusCode);
        var undone = (await client.UndoAsync())!;
        Assert.Equal(item.AssignmentId, undone.Assignment.AssignmentId);
        Assert.Equal(item.Responses, undone.Assignment.Responses);
        var reply = await client.SubmitAsync(new LabelSubmission { AssignmentId = item.AssignmentId, Tie = true }, "k1");
        Assert.Equal(201, reply.Status);
        var undoLabel = (await client.UndoAsync())!;
        Assert.Equal(reply.LabelId, undoLabel.LabelId);
        Assert.True(undoLabel.Previous!.Tie);
    }
}
