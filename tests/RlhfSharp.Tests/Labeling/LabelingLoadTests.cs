using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Data.Sqlite;
using RlhfSharp.Labeling;
using RlhfSharp.Tests.Tokenization;
using Xunit.Abstractions;

namespace RlhfSharp.Tests.Labeling;

/// <summary>
/// Many annotators labelling at once while the server is killed with SIGKILL and restarted: every label the server
/// acknowledged must be in the database exactly once afterwards.
/// </summary>
public class LabelingLoadTests(ITestOutputHelper output)
{
    [Fact]
    [Trait("Speed", "Slow")]
    public async Task Concurrent_annotators_through_sigkill_and_restart_lose_no_acknowledged_label_and_count_none_twice()
    {
        const int annotators = 50, labelsEach = 20, perItem = 3;
        int kills = Slow.Pick(1, 3);
        using var dir = new TempDir();
        string db = Path.Combine(dir.Path, "labels.db");
        var tokens = new List<(string Name, string Token)>();
        {
            var store = LabelStore.Open(db);
            for (int i = 0; i < annotators; i++) tokens.Add(($"load{i}", store.AddAnnotator($"load{i}")));
            int items = (annotators * labelsEach + perItem - 1) / perItem + 10;
            for (int i = 0; i < items; i++)
                store.AddItem($"prompt {i}", [$"a{i}", $"b{i}", $"c{i}", $"d{i}"], LabelTask.Rank, perItem, "load");
            SqliteConnection.ClearAllPools();
        }

        using var server = new LabelServerProcess(db);
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(10) };
        var acknowledged = new ConcurrentDictionary<(string Name, string Key), (long LabelId, long[] Ranking)>();
        int duplicates = 0, total = annotators * labelsEach;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(Slow.Pick(3, 6));
        var clock = Stopwatch.StartNew();

        async Task Annotate(string name, string token, int seed)
        {
            var client = new LabelingClient(http, token);
            var random = new Random(seed);
            for (int n = 0; n < labelsEach; n++)
            {
                Assignment? assignment = null;
                while (assignment is null)
                {
                    if (DateTime.UtcNow > deadline) throw new TimeoutException($"{name} could not get assignment {n}");
                    try { assignment = await client.NextAsync() ?? throw new InvalidOperationException($"{name} ran out of items at {n}"); }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { await Task.Delay(100); }
                }
                var ranking = assignment.Responses.Select(r => r.Id).OrderBy(_ => random.Next()).ToArray();
                string key = $"{name}-{n}";
                var reply = await client.SubmitWithRetryAsync(new LabelSubmission { AssignmentId = assignment.AssignmentId, Ranking = ranking }, key, deadline - DateTime.UtcNow);
                Assert.True(reply.Acknowledged, $"{name} label {n}: {reply.Status} {reply.Error}");
                if (reply.Duplicate) Interlocked.Increment(ref duplicates);
                Assert.True(acknowledged.TryAdd((name, key), (reply.LabelId, ranking)));
            }
        }

        async Task Kill()
        {
            for (int k = 1; k <= kills; k++)
            {
                // Kill at evenly spaced points of the run, while all annotators are mid-flight.
                while (acknowledged.Count < total * k / (kills + 1) && DateTime.UtcNow < deadline) await Task.Delay(5);
                server.Kill();
                output.WriteLine($"SIGKILL {k} at {acknowledged.Count} acknowledged labels, {clock.Elapsed.TotalSeconds:F1} s");
                await server.StartAsync();
            }
        }

        var workers = tokens.Select((t, i) => Task.Run(() => Annotate(t.Name, t.Token, i))).ToList();
        await Task.WhenAll([.. workers, Kill()]);
        double seconds = clock.Elapsed.TotalSeconds;
        server.Kill();
        SqliteConnection.ClearAllPools();

        var stored = LabelStore.Open(db).Labels();
        var byKey = stored.GroupBy(l => (l.Annotator, l.IdempotencyKey)).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(total, acknowledged.Count);
        foreach (var (key, ack) in acknowledged)
        {
            Assert.True(byKey.TryGetValue(key, out var rows), $"acknowledged label {key} is missing");
            var row = Assert.Single(rows);
            Assert.Equal(ack.LabelId, row.Id);
            Assert.Equal(ack.Ranking, row.Body.Ranking);
        }
        Assert.Equal(total, stored.Count); // nothing stored that was not acknowledged
        // No annotator labelled an item twice, and no item got more than its three labels.
        Assert.Equal(total, stored.Select(l => (l.ItemId, l.AnnotatorId)).Distinct().Count());
        Assert.InRange(stored.GroupBy(l => l.ItemId).Max(g => g.Count()), 1, perItem);

        string report = $"load: {annotators} annotators × {labelsEach} labels, {kills} SIGKILL(s): {acknowledged.Count} acknowledged, {stored.Count} stored, " +
                        $"{duplicates} retries answered as duplicates, {seconds:F1} s, {total / seconds:F0} labels/s (restarts included)";
        output.WriteLine(report);
        Console.WriteLine(report);
    }
}
