using System.Text.Json.Nodes;
using OpenAI.Chat;
using RlhfSharp.Data;
using RlhfSharp.Synthesis;
using RlhfSharp.Tests.Serve;

namespace RlhfSharp.Tests.Synthesis;

/// <summary>
/// <c>rlhf synth</c>: against the project's own <c>rlhf serve</c> (stories260k as the teacher), and against a scripted
/// endpoint where exact request counts matter (retries, resume, errors).
/// </summary>
public class SynthTests(ServeFixture serve) : IClassFixture<ServeFixture>, IDisposable
{
    const string KeyVariable = "RLHF_SYNTH_TEST_KEY";
    readonly string dir = Directory.CreateTempSubdirectory("synth-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static Teacher Teacher(Uri url, int concurrency = 2, int retries = 0, string model = "stories260k") =>
        new(new TeacherOptions { BaseUrl = url, Model = model, ApiKeyVariable = KeyVariable, Concurrency = concurrency, MaxRetries = retries, MaxTokens = 24, Temperature = 0 });

    Teacher ServeTeacher()
    {
        Environment.SetEnvironmentVariable(KeyVariable, ServeFixture.ApiKey);
        return Teacher(serve.BaseUri);
    }

    [Fact]
    public async Task Demonstrations_from_rlhf_serve_load_as_sft_data_and_count_tokens()
    {
        var teacher = ServeTeacher();
        string output = Path.Combine(dir, "demos.jsonl");
        using (var journal = SynthJournal.Open(output))
            await TeacherDemonstrations.RunAsync(teacher, ["Once upon a time", "The dog ran", "Lily had a"], journal);
        var demos = DatasetLoader.LoadDemonstrations(output).Records;
        Assert.Equal(3, demos.Count);
        Assert.All(demos, d => Assert.False(string.IsNullOrEmpty(d.Completion)));
        Assert.Equal(3, teacher.Requests);
        Assert.Equal(3 * 24, teacher.CompletionTokens); // temperature 0 and 24 tokens each, as the server reports
        Assert.True(teacher.PromptTokens > 0);
    }

    [Fact]
    public async Task Ai_feedback_from_rlhf_serve_gives_rankings_rlhf_rm_reads_with_reasons()
    {
        var teacher = ServeTeacher();
        string output = Path.Combine(dir, "feedback.jsonl");
        var items = new List<Candidates>
        {
            new("Tell me a story.", ["Once upon a time there was a kind cat.", "No."]),
            new("What did Tom see?", ["Tom saw a big red ball in the park.", "ball ball ball", "He saw a bird."]),
        };
        using (var journal = SynthJournal.Open(output))
        using (var skipped = SynthJournal.Open(output + ".skipped.jsonl"))
        {
            await new AiFeedback(teacher, Constitution.Default, pairwise: false).RunAsync(items, journal, skipped);
            Assert.Equal(2, journal.Records.Count + skipped.Records.Count);
            // 2 requests (rationale, verdict) per order, 2 orders per pair; 1 + 3 pairs.
            Assert.Equal(4 * (1 + 3), teacher.Requests);
            foreach (var r in journal.Records.Concat(skipped.Records))
                Assert.All((JsonArray)r["reasons"]!, x => Assert.False(string.IsNullOrEmpty(x!["reasons"]!.GetValue<string>())));
        }
        if (new FileInfo(output).Length > 0)
            Assert.All(DatasetLoader.LoadRankings(output).Records, r => Assert.True(r.Responses.Count >= 2));
    }

    [Fact]
    public async Task Self_instruct_against_rlhf_serve_keeps_only_instructions_that_pass_the_filters()
    {
        var teacher = ServeTeacher();
        string output = Path.Combine(dir, "instruct.jsonl");
        Assert.Equal(175, SelfInstruct.LoadSeeds(Path.Combine(AppContext.BaseDirectory, "data", "self-instruct", "seed_tasks.jsonl")).Count);
        // Short seeds keep the list prompt inside stories260k's 512-token context (its tokens are nearly characters).
        string seedFile = Path.Combine(dir, "seeds.jsonl");
        File.WriteAllLines(seedFile, new[] { "Tell a story about a cat.", "Name a happy color.", "Say why dogs bark." }.Select((t, i) =>
            new JsonObject { ["id"] = $"s{i}", ["instruction"] = t, ["instances"] = new JsonArray(new JsonObject { ["input"] = "", ["output"] = "Ok." }) }.ToJsonString()));
        var seeds = SelfInstruct.LoadSeeds(seedFile);
        using var requests = SynthJournal.Open(output + ".requests.jsonl");
        using var journal = SynthJournal.Open(output);
        await new SelfInstruct(teacher, new SelfInstructOptions { Count = 1, PromptInstructions = 2, MachineInstructions = 0 }).RunAsync(seeds, requests, journal);
        var kept = requests.Records.SelectMany(r => (JsonArray?)r["kept"] ?? []).Select(k => k!.GetValue<string>()).ToList();
        Assert.Single(kept);
        Assert.Null(InstructionFilter.QualityProblem(kept[0]));
        Assert.True(InstructionFilter.MaxSimilarity(kept[0], seeds.Select(x => x.Instruction)) < 0.7);
        // Every kept instruction ends as an SFT row or as a journalled reply without an output (a story model rarely writes "Output:").
        int noOutput = requests.Records.Count(r => r["id"]!.GetValue<string>().StartsWith("no-output-"));
        Assert.Equal(1, journal.Records.Count + noOutput);
        if (journal.Records.Count > 0) Assert.Equal(journal.Records.Count, DatasetLoader.LoadDemonstrations(output).Records.Count);
    }

    [Fact]
    public async Task Self_instruct_on_a_teacher_that_cannot_write_lists_stops_and_says_why()
    {
        using var endpoint = new ScriptedEndpoint((_, _) => new(200, "Sure!"));
        string output = Path.Combine(dir, "instruct.jsonl");
        var seeds = SelfInstruct.LoadSeeds(Path.Combine(AppContext.BaseDirectory, "data", "self-instruct", "seed_tasks.jsonl"));
        using var requests = SynthJournal.Open(output + ".requests.jsonl");
        using var journal = SynthJournal.Open(output);
        var run = new SelfInstruct(Teacher(endpoint.BaseUrl, concurrency: 1), new SelfInstructOptions { Count = 5, MaxFruitlessRequests = 3 });
        var e = await Assert.ThrowsAsync<RlhfException>(() => run.RunAsync(seeds, requests, journal));
        Assert.Contains("no instruction that passes the filters", e.Message);
        Assert.Equal(3, endpoint.Requests);
        Assert.All(requests.Records, r => Assert.Equal(1, r["rejected"]!["too short (3 words or fewer)"]!.GetValue<int>()));
    }

    [Fact]
    public async Task Self_instruct_keeps_novel_instructions_and_writes_sft_rows()
    {
        var lists = new[]
        {
            " Tell a short story about a brave mouse.\n10. Describe the image below.\n11. Give me three facts about whales.",
            " Tell a short story about a brave little mouse.\n10. Suggest a name for a pet turtle please.",
        };
        using var endpoint = new ScriptedEndpoint((n, body) =>
        {
            string user = body["messages"]![0]!["content"]!.GetValue<string>();
            if (user.StartsWith("Come up with a series of tasks:")) return new(200, lists[Math.Min(n, 1)]);
            return new(200, " <noinput>\nOutput: A fine answer.");
        });
        var teacher = Teacher(endpoint.BaseUrl, concurrency: 1);
        string output = Path.Combine(dir, "instruct.jsonl");
        var seeds = SelfInstruct.LoadSeeds(Path.Combine(AppContext.BaseDirectory, "data", "self-instruct", "seed_tasks.jsonl"));
        using (var requests = SynthJournal.Open(output + ".requests.jsonl"))
        using (var journal = SynthJournal.Open(output))
            await new SelfInstruct(teacher, new SelfInstructOptions { Count = 3 }).RunAsync(seeds, requests, journal);
        var rows = DatasetLoader.LoadDemonstrations(output).Records.Select(d => d.Prompt).Order().ToList();
        // "Describe the image" is blacklisted; "brave little mouse" has ROUGE-L 0.93 to the kept "brave mouse".
        Assert.Equal(["Give me three facts about whales.", "Suggest a name for a pet turtle please.", "Tell a short story about a brave mouse."], rows);
        Assert.Equal(2 + 3, endpoint.Requests);
        // The list prompt: 8 in-context instructions (6 seeds + up to 2 kept), numbered, ending in "9.".
        string prompt = endpoint.Bodies[1]["messages"]![0]!["content"]!.GetValue<string>();
        Assert.EndsWith("\n9.", prompt);
        Assert.Contains("Tell a short story about a brave mouse.", prompt);
    }

    [Fact]
    public async Task Retries_429_and_5xx_with_backoff_then_succeeds()
    {
        using var endpoint = new ScriptedEndpoint((n, _) => n switch { 0 => new(429), 1 => new(503), _ => new(200, "ok") });
        var reply = await Teacher(endpoint.BaseUrl, retries: 3).AskAsync([new UserChatMessage("hi")]);
        Assert.Equal("ok", reply.Text);
        Assert.Equal(3, endpoint.Requests);
    }

    [Fact]
    public async Task No_more_requests_are_in_flight_than_the_concurrency_limit()
    {
        int inFlight = 0, most = 0;
        using var endpoint = new ScriptedEndpoint((_, b) =>
        {
            int now = Interlocked.Increment(ref inFlight);
            for (int seen = Volatile.Read(ref most); now > seen; seen = Volatile.Read(ref most)) Interlocked.CompareExchange(ref most, now, seen);
            Thread.Sleep(300); // long enough for the client to start every request it is allowed to
            Interlocked.Decrement(ref inFlight);
            return new(200, "answer to " + b["messages"]![0]!["content"]);
        }, concurrent: true);
        var prompts = Enumerable.Range(0, 12).Select(i => $"prompt {i}").ToList();
        using var journal = SynthJournal.Open(Path.Combine(dir, "demos.jsonl"));
        await TeacherDemonstrations.RunAsync(Teacher(endpoint.BaseUrl, concurrency: 3), prompts, journal);
        Assert.Equal(12, endpoint.Requests);
        Assert.Equal(12, journal.Records.Count);
        Assert.InRange(most, 2, 3); // requests overlap, and never more than --concurrency of them
    }

    [Fact]
    public async Task A_refused_key_and_an_unreachable_endpoint_get_clear_errors()
    {
        using var endpoint = new ScriptedEndpoint((_, _) => new(401));
        var e = await Assert.ThrowsAsync<RlhfException>(() => Teacher(endpoint.BaseUrl, retries: 3).AskAsync([new UserChatMessage("hi")]));
        Assert.Contains("refused the API key (HTTP 401)", e.Message);
        Assert.Contains(KeyVariable, e.Message);
        Assert.Equal(1, endpoint.Requests); // a refused key is not retried

        var nowhere = new Uri($"http://127.0.0.1:{ScriptedEndpoint.FreePort()}/v1/");
        e = await Assert.ThrowsAsync<RlhfException>(() => Teacher(nowhere, retries: 0).AskAsync([new UserChatMessage("hi")]));
        Assert.Contains("cannot reach the teacher", e.Message);
    }

    [Fact]
    public async Task A_rerun_after_a_failure_pays_only_for_unfinished_items()
    {
        string output = Path.Combine(dir, "demos.jsonl");
        var prompts = Enumerable.Range(0, 6).Select(i => $"prompt {i}").ToList();
        using (var failing = new ScriptedEndpoint((n, b) => n < 3 ? new(200, "answer to " + b["messages"]![0]!["content"]) : new(500)))
        using (var journal = SynthJournal.Open(output))
        {
            await Assert.ThrowsAsync<RlhfException>(() => TeacherDemonstrations.RunAsync(Teacher(failing.BaseUrl, concurrency: 1), prompts, journal));
            Assert.Equal(3, journal.Records.Count);
        }
        File.AppendAllText(output, "{\"id\":\"demo-5\",\"prompt\":\"cut o"); // a line the kill cut off
        using (var healthy = new ScriptedEndpoint((_, b) => new(200, "answer to " + b["messages"]![0]!["content"])))
        using (var journal = SynthJournal.Open(output))
        {
            await TeacherDemonstrations.RunAsync(Teacher(healthy.BaseUrl, concurrency: 1), prompts, journal);
            Assert.Equal(3, healthy.Requests);
        }
        var demos = DatasetLoader.LoadDemonstrations(output).Records;
        Assert.Equal(prompts, demos.Select(d => d.Prompt).Order().ToList());
        Assert.All(demos, d => Assert.Equal("answer to " + d.Prompt, d.Completion));
    }

    [Fact]
    public async Task Ai_feedback_averages_both_orders_so_position_bias_cancels()
    {
        // A labeller that always prefers whichever response comes first, with P = 0.8: both orders average to 0.5.
        var biased = new Dictionary<string, double> { ["1"] = Math.Log(0.8), ["2"] = Math.Log(0.2) };
        // A labeller that prefers the response containing "good" with P = 0.9 in either position.
        using var endpoint = new ScriptedEndpoint((_, b) =>
        {
            var messages = (JsonArray)b["messages"]!;
            if (messages.Count == 1) return new(200, "Some reasons.");
            string q = messages[0]!["content"]!.GetValue<string>();
            bool goodFirst = q.IndexOf("good", StringComparison.Ordinal) < q.IndexOf("Response 2:", StringComparison.Ordinal) && q.Contains("good");
            if (!q.Contains("good")) return new(200, "1", biased);
            return new(200, goodFirst ? "1" : "2", new Dictionary<string, double> { ["▁1"] = Math.Log(goodFirst ? 0.9 : 0.1), ["▁2"] = Math.Log(goodFirst ? 0.1 : 0.9) });
        });
        string output = Path.Combine(dir, "pairs.jsonl");
        using var journal = SynthJournal.Open(output);
        using var skipped = SynthJournal.Open(output + ".skipped.jsonl");
        await new AiFeedback(Teacher(endpoint.BaseUrl), Constitution.Default, pairwise: true).RunAsync(
            [new Candidates("p", ["meh", "a good one"]), new Candidates("q", ["x", "y"])], journal, skipped);
        var records = journal.Records.OrderBy(r => r["id"]!.GetValue<string>()).ToList();
        // The SDK carries log-probabilities as float32, so 1e-7 is as close as they come back.
        Assert.Equal(0.1, records[0]["preferences"]![0]!["p_a_better"]!.GetValue<double>(), 6);
        Assert.Equal("a good one", records[0]["chosen"]!.GetValue<string>());
        Assert.Equal(0.5, records[1]["preferences"]![0]!["p_a_better"]!.GetValue<double>(), 6);
        var pairs = DatasetLoader.LoadPreferences(output).Records;
        Assert.Equal(2, pairs.Count);
    }

    [Fact]
    public void The_verdict_reads_1_and_2_from_first_token_logprobs_or_the_text()
    {
        var reply = new TeacherReply("1", new Dictionary<string, double> { ["1"] = Math.Log(0.6), ["2"] = Math.Log(0.2), ["▁1"] = Math.Log(0.1), ["x"] = Math.Log(0.1) });
        Assert.Equal(0.7 / 0.9, AiFeedback.PreferenceForFirst(reply)!.Value, 12);
        Assert.Equal(0.0, AiFeedback.PreferenceForFirst(new TeacherReply(" 2 is better", new Dictionary<string, double>())));
        Assert.Null(AiFeedback.PreferenceForFirst(new TeacherReply("neither", new Dictionary<string, double> { ["n"] = -0.1 })));
    }
}
