using System.Net.Http.Headers;
using System.Text;
using RlhfSharp.Labeling;

namespace RlhfSharp.Tests.Labeling;

/// <summary>Malformed, oversized and unauthorised requests: every one answered 4xx, none leaving a row behind.</summary>
public class BadRequestTests
{
    sealed record Bad(string What, Func<HttpRequestMessage> Build);

    [Fact]
    public async Task Hundred_and_one_malformed_oversized_or_unauthorised_requests_are_all_4xx_and_store_nothing()
    {
        await using var t = await LabelingTestServer.StartAsync(s =>
        {
            s.AddItem("rank", ["r1", "r2", "r3", "r4"], LabelTask.Rank, 3, "test");
            s.AddItem("pair", ["p1", "p2"], LabelTask.Pair, 3, "test");
            s.AddItem("rate", ["q1", "q2"], LabelTask.Rate, 3, "test");
            s.AddItem("demo", [], LabelTask.Demonstrate, 3, "test");
        });
        string token = t.Store.AddAnnotator("alice"), other = t.Store.AddAnnotator("bob");
        var alice = t.Client(token);
        // Open one assignment of each task, so bad labels are aimed at real assignments.
        var open = new Dictionary<string, Assignment>();
        foreach (var task in LabelTasks.Names) open[task] = (await alice.NextAsync(task))!;
        var bobs = (await t.Client(other).NextAsync("rank"))!;
        var rank = open["rank"];
        long[] ids = rank.Responses.Select(r => r.Id).ToArray();
        string ranking = string.Join(",", ids);
        var before = t.Store.RowCounts();

        var bad = new List<Bad>();
        HttpRequestMessage Post(string body, string? auth = null, string? key = "key-1", string contentType = "application/json", bool expect = false)
        {
            var r = new HttpRequestMessage(HttpMethod.Post, "/api/labels") { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) };
            r.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            r.Headers.TryAddWithoutValidation("Authorization", auth ?? "Bearer " + token);
            if (key is not null) r.Headers.TryAddWithoutValidation("Idempotency-Key", key);
            // Oversized bodies: wait for the server's verdict before sending, so the 413 cannot race a reset.
            if (expect) r.Headers.ExpectContinue = true;
            return r;
        }
        HttpRequestMessage Send(string method, string path, string? auth)
        {
            var r = new HttpRequestMessage(new HttpMethod(method), path);
            if (auth is not null) r.Headers.TryAddWithoutValidation("Authorization", auth);
            return r;
        }
        string Valid(long assignment) => $$"""{"assignment_id":{{assignment}},"ranking":[{{ranking}}]}""";

        // Unauthorised (28): no token, wrong tokens, wrong schemes, on every endpoint; a valid label with a bad token.
        foreach (var path in new[] { "/api/me", "/api/next", "/api/next?task=rank", "/api/admin/stats" })
            foreach (var auth in new string?[] { null, "Bearer wrong", "Bearer " + token + "x", "Basic " + token, "Bearer", token })
                bad.Add(new($"GET {path} as '{auth}'", () => Send("GET", path, auth)));
        foreach (var auth in new[] { "Bearer nope", "bearer" + token, "Token " + token, "" })
            bad.Add(new($"POST label as '{auth}'", () => Post(Valid(rank.AssignmentId), auth: auth)));

        // Annotator reaching the admin dashboard (3).
        for (int i = 0; i < 3; i++) bad.Add(new("annotator on the dashboard", () => Send("GET", "/api/admin/stats", "Bearer " + token)));

        // Malformed JSON (20).
        foreach (var body in new[]
        {
            "", "{", "}", "[]", "null", "42", "\"label\"", "{\"assignment_id\":}", $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":[{ranking}}}",
            $"{{\"assignment_id\":\"{rank.AssignmentId}\",\"ranking\":[{ranking}]}}", $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":\"{ranking}\"}}",
            $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":[{ranking}],\"extra\":1}}", $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":[1e400]}}",
            $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":[NaN]}}", "{\"assignment_id\":99999999999999999999999}",
            $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":[[[[[[[[[[1]]]]]]]]]]}}", $"{{'assignment_id':{rank.AssignmentId}}}",
            "\u0000\u0001\u0002", $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":[{ranking}]}} trailing", "{\"ratings\":[{\"response_id\":1,\"quality\":\"good\"}]}",
        })
            bad.Add(new($"malformed body {body}", () => Post(body)));

        // Labels that do not fit their task (15).
        var pair = open["pair"]; var rate = open["rate"]; var demo = open["demo"];
        long[] q = rate.Responses.Select(r => r.Id).ToArray();
        foreach (var body in new[]
        {
            $"{{\"assignment_id\":{rank.AssignmentId}}}",
            $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":[{ids[0]},{ids[1]}]}}",
            $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":[{ids[0]},{ids[0]},{ids[1]},{ids[2]}]}}",
            $"{{\"assignment_id\":{rank.AssignmentId},\"ranking\":[{ranking},{ids[0]}]}}",
            $"{{\"assignment_id\":{rank.AssignmentId},\"choice\":{ids[0]}}}",
            $"{{\"assignment_id\":{pair.AssignmentId},\"choice\":{ids[0]}}}",
            $"{{\"assignment_id\":{pair.AssignmentId},\"choice\":{pair.Responses[0].Id},\"demonstration\":\"x\"}}",
            $"{{\"assignment_id\":{rate.AssignmentId},\"ratings\":[{{\"response_id\":{q[0]},\"quality\":0}},{{\"response_id\":{q[1]},\"quality\":4}}]}}",
            $"{{\"assignment_id\":{rate.AssignmentId},\"ratings\":[{{\"response_id\":{q[0]},\"quality\":3}},{{\"response_id\":{q[1]},\"quality\":8}}]}}",
            $"{{\"assignment_id\":{rate.AssignmentId},\"ratings\":[{{\"response_id\":{q[0]},\"quality\":3}}]}}",
            $"{{\"assignment_id\":{rate.AssignmentId},\"ratings\":[{{\"response_id\":{q[0]},\"quality\":3,\"flags\":[\"harmful\",\"harmful\"]}},{{\"response_id\":{q[1]},\"quality\":3}}]}}",
            $"{{\"assignment_id\":{rate.AssignmentId},\"ratings\":[{{\"response_id\":{q[0]},\"quality\":3,\"flags\":[\"<script>\"]}},{{\"response_id\":{q[1]},\"quality\":3}}]}}",
            $"{{\"assignment_id\":{demo.AssignmentId},\"demonstration\":\"  \\n \"}}",
            $"{{\"assignment_id\":{demo.AssignmentId},\"demonstration\":\"a\\u0000b\"}}",
            $"{{\"assignment_id\":{rate.AssignmentId},\"ratings\":[null]}}", // issue #16: was a 500
        })
            bad.Add(new($"misfit label {body}", () => Post(body)));

        // Someone else's, or no, assignment (4).
        bad.Add(new("bob's assignment", () => Post(Valid(bobs.AssignmentId))));
        bad.Add(new("no such assignment", () => Post(Valid(123456))));
        bad.Add(new("assignment 0", () => Post(Valid(0))));
        bad.Add(new("negative assignment", () => Post(Valid(-1))));

        // Idempotency keys (7).
        foreach (var key in new string?[] { null, "", new string('k', 129), "has space", "semi;colon", "slash/key", "quote\"key" })
            bad.Add(new($"idempotency key '{key}'", () => Post(Valid(rank.AssignmentId), key: key)));

        // Content types (4).
        foreach (var type in new[] { "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml" })
            bad.Add(new($"content type {type}", () => Post(Valid(rank.AssignmentId), contentType: type)));

        // Oversized (8): bodies over the limit, a demonstration over its limit, headers and URL over Kestrel's limits.
        foreach (int kb in new[] { 300, 1024, 4096 })
            bad.Add(new($"{kb} KB body", () => Post($"{{\"assignment_id\":{demo.AssignmentId},\"demonstration\":\"{new string('a', kb * 1024)}\"}}", expect: true)));
        bad.Add(new("demonstration of 20,001 characters", () => Post($"{{\"assignment_id\":{demo.AssignmentId},\"demonstration\":\"{new string('a', 20_001)}\"}}")));
        bad.Add(new("demonstration of 100,000 characters", () => Post($"{{\"assignment_id\":{demo.AssignmentId},\"demonstration\":\"{new string('é', 100_000)}\"}}")));
        bad.Add(new("32 KB header", () => { var r = Send("GET", "/api/me", "Bearer " + token); r.Headers.TryAddWithoutValidation("X-Filler", new string('x', 32 * 1024)); return r; }));
        bad.Add(new("8 KB URL", () => Send("GET", "/api/next?task=" + new string('r', 8 * 1024), "Bearer " + token)));
        bad.Add(new("2 KB token", () => Send("GET", "/api/me", "Bearer " + new string('t', 2048))));

        // Unknown tasks, endpoints and methods (12).
        foreach (var task in new[] { "ranking", "RANK", "<script>", "", "rank;drop", "%00" })
            bad.Add(new($"task '{task}'", () => Send("GET", "/api/next?task=" + task, "Bearer " + token)));
        foreach (var (method, path) in new[] { ("GET", "/api/labels"), ("DELETE", "/api/labels"), ("PUT", "/api/me"), ("GET", "/api/admin"), ("GET", "/api/../etc/passwd"), ("GET", "/api/labels/1") })
            bad.Add(new($"{method} {path}", () => Send(method, path, "Bearer " + token)));

        Assert.Equal(101, bad.Count);
        var answers = new List<(string What, int Status)>();
        foreach (var b in bad)
        {
            using var response = await t.Http.SendAsync(b.Build());
            answers.Add((b.What, (int)response.StatusCode));
        }
        var wrong = answers.Where(a => a.Status is < 400 or >= 500).ToList();
        Assert.True(wrong.Count == 0, "not 4xx: " + string.Join("; ", wrong.Select(w => $"{w.What[..Math.Min(80, w.What.Length)]} → {w.Status}")));
        Assert.Equal(before, t.Store.RowCounts());
        Assert.Equal(0, t.Store.RowCounts()["labels"]);
        // The server still works after all that.
        Assert.Equal(201, (await alice.SubmitAsync(new LabelSubmission { AssignmentId = rank.AssignmentId, Ranking = ids }, "good-key")).Status);
        var counts = answers.GroupBy(a => a.Status).OrderBy(g => g.Key).Select(g => $"{g.Key}×{g.Count()}");
        Console.WriteLine("bad requests: " + string.Join(", ", counts));
    }
}
