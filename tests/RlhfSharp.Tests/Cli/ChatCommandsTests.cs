using System.Text.Json.Nodes;

namespace RlhfSharp.Tests.Cli;

/// <summary>Issue 15, <c>rlhf chat</c>: a banner, /help /reset /system /save that never reach the model, and a note when a reply is cut.</summary>
public sealed class ChatCommandsTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-chat-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    [Fact]
    public void Slash_commands_manage_the_conversation_and_a_cut_reply_is_noted()
    {
        string saved = Path.Combine(tmp, "chat.json");
        string input = "/help\n/system Be kind.\nTom had a ball\n/reset\nLily went\n/save " + saved + "\n/nope\n\n";
        var r = RlhfProcess.RunWithInput(input, "chat", "--model", "stories260k", "--temperature", "0", "--max-new-tokens", "6");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("chat with", r.Stderr);
        Assert.Contains("template plain", r.Stderr);
        Assert.Contains("/reset", r.Stdout);
        Assert.Contains("unknown command /nope", r.Stdout);
        Assert.Contains("(cut at 6 tokens: --max-new-tokens", r.Stderr);
        var messages = JsonNode.Parse(File.ReadAllText(saved))!["messages"]!.AsArray();
        // /reset forgot the first exchange but kept the system prompt; no command became a message.
        Assert.Equal(["system", "user", "assistant"], messages.Select(m => (string)m!["role"]!));
        Assert.Equal("Be kind.", (string?)messages[0]!["content"]);
        Assert.Equal("Lily went", (string?)messages[1]!["content"]);
        Assert.False(string.IsNullOrEmpty((string?)messages[2]!["content"]));
    }

    /// <summary>The reply of a new chat session to one line, as printed after the prompt marker.</summary>
    static string Reply(params string[] extra)
    {
        var r = RlhfProcess.RunWithInput("Once upon a time\n\n", ["chat", "--model", "stories260k", "--temperature", "1", "--max-new-tokens", "12", .. extra]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return Assert.Single(r.Stdout.Split("> ", StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()).Where(s => s.Length > 0));
    }

    [Fact]
    public void Unseeded_chats_draw_fresh_replies_and_a_seed_repeats_them()
    {
        // Issue 15: every chat started its reply with the same token, because the sampler's seed was a fixed default.
        var unseeded = Enumerable.Range(0, 3).Select(_ => Reply()).ToList();
        Assert.True(unseeded.Distinct().Count() > 1, "three unseeded chats gave the same reply: " + unseeded[0]);
        Assert.Equal(Reply("--seed", "7"), Reply("--seed", "7"));
    }

    [Fact]
    public void A_conversation_that_fills_the_context_caps_the_reply_then_keeps_the_session()
    {
        // stories260K has 512 positions; each reply is forced to 300 tokens. The second reply only has the positions the
        // conversation leaves, the third has none: both are told, neither ends the session or loses what was said.
        string saved = Path.Combine(tmp, "chat.json");
        string input = "Lily went\nTom ran\nSue sat\n/save " + saved + "\n\n";
        // One OpenMP thread: ~800 one-token steps of a 260K-parameter model, where two threads only wait on each other
        // (on a busy machine 4× the CPU time, past the process time limit).
        var r = RlhfProcess.RunWithInput(input, new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "1" },
            "chat", "--model", "stories260k", "--temperature", "0", "--max-new-tokens", "300", "--min-new-tokens", "300");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("(cut at 300 tokens: --max-new-tokens sets the limit)", r.Stderr);
        Assert.Matches(@"\(cut at (\d|\d\d|1\d\d|2[0-8]\d|29\d) tokens: the conversation fills the model's 512 positions; /reset starts over\)", r.Stderr);
        Assert.Contains("(the conversation fills the model's 512 positions: /reset starts over)", r.Stderr);
        var messages = JsonNode.Parse(File.ReadAllText(saved))!["messages"]!.AsArray();
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.Select(m => (string)m!["role"]!));
        Assert.Equal("Tom ran", (string?)messages[2]!["content"]);
    }
}
