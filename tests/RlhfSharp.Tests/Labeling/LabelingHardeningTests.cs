using System.Collections.Concurrent;
using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using RlhfSharp.Labeling;

namespace RlhfSharp.Tests.Labeling;

/// <summary>Issue #16 §5, <c>rlhf label serve</c>: null ratings, a reused Idempotency-Key, and a server that logs.</summary>
public sealed class LabelingHardeningTests
{
    [Fact]
    public async Task Ratings_holding_null_are_a_400_naming_the_entry_not_a_500()
    {
        await using var t = await LabelingTestServer.StartAsync(s => s.AddItem("rate", ["q1", "q2"], LabelTask.Rate, 1, "test"));
        var alice = t.Client(t.Store.AddAnnotator("alice"));
        var rate = (await alice.NextAsync("rate"))!;
        var reply = await alice.SubmitAsync(new LabelSubmission { AssignmentId = rate.AssignmentId, Ratings = [null!, null!] }, "k1");
        Assert.Equal(400, reply.Status);
        Assert.Contains("ratings[0]", reply.Error);
        Assert.Equal(0, t.Store.RowCounts()["labels"]);
    }

    [Fact]
    public async Task An_idempotency_key_reused_with_another_body_is_a_422_and_the_first_label_stays()
    {
        await using var t = await LabelingTestServer.StartAsync(s => LabelingTestServer.AddRankItems(s, 2, perItem: 1));
        var alice = t.Client(t.Store.AddAnnotator("alice"));
        var first = (await alice.NextAsync())!;
        long[] ids = first.Responses.Select(r => r.Id).ToArray();
        var label = new LabelSubmission { AssignmentId = first.AssignmentId, Ranking = ids };
        Assert.Equal(201, (await alice.SubmitAsync(label, "key-1")).Status);
        // A retry (same key, same body) is acknowledged as the duplicate it is.
        var retry = await alice.SubmitAsync(label, "key-1");
        Assert.Equal(200, retry.Status);
        Assert.True(retry.Duplicate);
        // The same key with another ranking: before issue #16 a 200 "duplicate" that silently dropped the new body.
        var changed = await alice.SubmitAsync(label with { Ranking = [.. ids.Reverse()] }, "key-1");
        Assert.Equal(422, changed.Status);
        Assert.Contains("different", changed.Error);
        // The same key for another assignment: another body too (IETF idempotency-key draft §2.7).
        var second = (await alice.NextAsync())!;
        var elsewhere = await alice.SubmitAsync(new LabelSubmission { AssignmentId = second.AssignmentId, Ranking = second.Responses.Select(r => r.Id).ToArray() }, "key-1");
        Assert.Equal(422, elsewhere.Status);
        var stored = Assert.Single(t.Store.Labels());
        Assert.Equal(ids, stored.Body.Ranking);
    }

    [Fact]
    public async Task The_server_logs_its_start_with_the_database_its_stop_and_every_5xx_with_the_cause()
    {
        var log = new ListLoggerProvider();
        var t = await LabelingTestServer.StartAsync(s => LabelingTestServer.AddRankItems(s, 1), log);
        try
        {
            Assert.Contains(log.Lines, l => l.Level == LogLevel.Information && l.Text.Contains(Path.GetFullPath(t.DbPath)) && l.Text.Contains(t.Server.Urls[0]));
            var alice = t.Client(t.Store.AddAnnotator("alice"));
            var mine = (await alice.NextAsync())!;
            // Break the database under the running server: the submit fails inside SQLite, a 500 for the client.
            using (var c = new SqliteConnection($"Data Source={t.DbPath}"))
            {
                c.Open();
                using var drop = c.CreateCommand();
                drop.CommandText = "DROP TABLE labels";
                drop.ExecuteNonQuery();
            }
            var reply = await alice.SubmitAsync(new LabelSubmission { AssignmentId = mine.AssignmentId, Ranking = mine.Responses.Select(r => r.Id).ToArray() }, "k1");
            Assert.Equal(500, reply.Status);
            Assert.DoesNotContain("labels", reply.Error ?? ""); // the client gets no SQL
            var error = Assert.Single(log.Lines, l => l.Level == LogLevel.Error);
            Assert.Contains("500 on POST /api/labels", error.Text);
            Assert.Contains("no such table: labels", error.Exception?.Message ?? "");
        }
        finally { await t.DisposeAsync(); }
        Assert.Contains(log.Lines, l => l.Text.StartsWith("stopped") && l.Text.Contains(Path.GetFullPath(t.DbPath)));
    }

    /// <summary>Keeps what the server logs (the test's stand-in for the console).</summary>
    sealed class ListLoggerProvider : ILoggerProvider
    {
        public ConcurrentQueue<(LogLevel Level, string Text, Exception? Exception)> Queue { get; } = new();
        public IReadOnlyList<(LogLevel Level, string Text, Exception? Exception)> Lines => [.. Queue];
        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
        public void Dispose() { }

        sealed class Logger(ListLoggerProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => category.StartsWith("RlhfSharp", StringComparison.Ordinal);
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel)) owner.Queue.Enqueue((logLevel, formatter(state, exception), exception));
            }
        }
    }
}
