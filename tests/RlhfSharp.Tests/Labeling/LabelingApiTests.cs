using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using RlhfSharp.Labeling;

namespace RlhfSharp.Tests.Labeling;

/// <summary>The labelling API against a real Kestrel server on loopback.</summary>
public class LabelingApiTests
{
    static HttpRequestMessage Get(string path, string? token)
    {
        var r = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null) r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return r;
    }

    [Fact]
    public async Task Every_api_endpoint_needs_a_valid_bearer_token()
    {
        await using var t = await LabelingTestServer.StartAsync(s => LabelingTestServer.AddRankItems(s, 1));
        string valid = t.Store.AddAnnotator("a");
        foreach (var (method, path) in new[] { ("GET", "/api/me"), ("GET", "/api/next"), ("POST", "/api/labels"), ("GET", "/api/admin/stats") })
            foreach (string? auth in new[] { null, "Bearer nope", "Bearer ", "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("a:" + valid)) })
            {
                var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (auth is not null) request.Headers.TryAddWithoutValidation("Authorization", auth);
                if (method == "POST") request.Content = new StringContent("""{"assignment_id":1,"ranking":[1,2,3,4]}""", Encoding.UTF8, "application/json");
                using var response = await t.Http.SendAsync(request);
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} with '{auth}': {response.StatusCode}");
            }
        Assert.Equal(0, t.Store.RowCounts()["assignments"]);
    }

    [Fact]
    public async Task Annotators_see_only_their_own_assignments_and_never_others_labels()
    {
        await using var t = await LabelingTestServer.StartAsync(s => LabelingTestServer.AddRankItems(s, 1));
        var (alice, bob) = (t.Client(t.Store.AddAnnotator("alice")), t.Store.AddAnnotator("bob"));
        var mine = (await alice.NextAsync())!;
        var reply = await alice.SubmitAsync(new LabelSubmission { AssignmentId = mine.AssignmentId, Ranking = mine.Responses.Select(r => r.Id).ToArray() }, "k1");
        Assert.Equal(201, reply.Status);

        using var response = await t.Http.SendAsync(Get("/api/next", bob));
        string json = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(["assignment_id", "task", "prompt", "responses"], doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.NotEqual(mine.AssignmentId, doc.RootElement.GetProperty("assignment_id").GetInt64());
        foreach (var r in doc.RootElement.GetProperty("responses").EnumerateArray())
            Assert.Equal(["id", "text"], r.EnumerateObject().Select(p => p.Name).ToArray());

        // Bob labelling Alice's assignment finds nothing there.
        var theft = await t.Client(bob).SubmitAsync(new LabelSubmission { AssignmentId = mine.AssignmentId, Ranking = mine.Responses.Select(r => r.Id).ToArray() }, "k2");
        Assert.Equal(404, theft.Status);
        Assert.Equal(1, t.Store.RowCounts()["labels"]);
    }

    [Fact]
    public async Task A_retried_submission_is_acknowledged_again_and_counted_once()
    {
        await using var t = await LabelingTestServer.StartAsync(s => LabelingTestServer.AddRankItems(s, 2));
        var alice = t.Client(t.Store.AddAnnotator("alice"));
        var a = (await alice.NextAsync())!;
        var label = new LabelSubmission { AssignmentId = a.AssignmentId, Ranking = a.Responses.Select(r => r.Id).Reverse().ToArray() };
        var first = await alice.SubmitAsync(label, "same-key");
        var second = await alice.SubmitAsync(label, "same-key");
        Assert.Equal((201, false), (first.Status, first.Duplicate));
        Assert.Equal((200, true), (second.Status, second.Duplicate));
        Assert.Equal(first.LabelId, second.LabelId);
        Assert.Equal(1, (await alice.MeAsync()).Labels);
        Assert.Equal(1, t.Store.RowCounts()["labels"]);
        Assert.Equal(label.Ranking, t.Store.Labels().Single().Body.Ranking);
    }

    [Fact]
    public async Task Dashboard_needs_an_admin_and_reports_progress_and_agreement()
    {
        await using var t = await LabelingTestServer.StartAsync(s => LabelingTestServer.AddRankItems(s, 2, perItem: 3));
        string admin = t.Store.AddAnnotator("boss", admin: true);
        var annotators = Enumerable.Range(0, 3).Select(i => t.Client(t.Store.AddAnnotator($"a{i}"))).ToList();
        // Everyone orders best > good > poor > worst, except annotator 2 on Prompt 1, who swaps the top two.
        for (int i = 0; i < 3; i++)
            for (int item = 0; item < 2; item++)
            {
                var a = (await annotators[i].NextAsync())!;
                string[] order = i == 2 && a.Prompt == "Prompt 1" ? ["good", "best", "poor", "worst"] : ["best", "good", "poor", "worst"];
                var ranking = order.Select(word => a.Responses.Single(r => r.Text.StartsWith(word)).Id).ToArray();
                Assert.Equal(201, (await annotators[i].SubmitAsync(new LabelSubmission { AssignmentId = a.AssignmentId, Ranking = ranking }, $"k{item}")).Status);
            }

        using var forbidden = await t.Http.SendAsync(Get("/api/admin/stats", t.Store.AddAnnotator("nosy")));
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        using var response = await t.Http.SendAsync(Get("/api/admin/stats", admin));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = doc.RootElement;
        Assert.Equal(6, root.GetProperty("labels").GetInt64());
        var rank = root.GetProperty("tasks").EnumerateArray().Single();
        Assert.Equal(("rank", 2L, 2L, 6L), (rank.GetProperty("task").GetString(), rank.GetProperty("items").GetInt64(), rank.GetProperty("complete").GetInt64(), rank.GetProperty("labels").GetInt64()));
        // 2 items × 6 response pairs × 3 annotator pairs = 36 comparisons; the swap disagrees with 2 of them.
        Assert.Equal(36, root.GetProperty("pairwise_comparisons").GetInt64());
        Assert.Equal(34.0 / 36, root.GetProperty("pairwise_agreement").GetDouble(), 12);
        Assert.InRange(root.GetProperty("krippendorff_alpha").GetDouble(), 0.8, 0.999);
        var rows = root.GetProperty("annotators").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!);
        // a2 faces a 2–0 majority on all 12 pairs and departs from it on one.
        Assert.Equal(11.0 / 12, rows["a2"].GetProperty("majority_agreement").GetDouble(), 12);
        Assert.Equal(12, rows["a2"].GetProperty("majority_comparisons").GetInt32());
        Assert.Equal(2, rows["a0"].GetProperty("labels").GetInt64());
    }

    [Fact]
    public async Task Pages_forbid_inline_script_and_never_write_user_text_as_html()
    {
        await using var t = await LabelingTestServer.StartAsync();
        using var page = await t.Http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        string csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self'", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        string html = await page.Content.ReadAsStringAsync();
        Assert.Matches("<script src=\"/app.js\" defer></script>", html);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(html, "<script"));
        string js = await t.Http.GetStringAsync("/app.js");
        Assert.DoesNotContain("innerHTML", js);
        Assert.DoesNotContain("insertAdjacentHTML", js);
        Assert.DoesNotContain("document.write", js);
    }

    [Fact]
    public async Task A_database_failure_answers_500_without_sql_or_stack_trace()
    {
        await using var t = await LabelingTestServer.StartAsync(s => LabelingTestServer.AddRankItems(s, 1));
        string token = t.Store.AddAnnotator("a");
        using (var c = new SqliteConnection($"Data Source={t.DbPath}"))
        {
            c.Open();
            using var drop = c.CreateCommand();
            drop.CommandText = "DROP TABLE labels";
            drop.ExecuteNonQuery();
        }
        using var response = await t.Http.SendAsync(Get("/api/me", token));
        string body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("""{"error":"internal error"}""", body);
    }
}
