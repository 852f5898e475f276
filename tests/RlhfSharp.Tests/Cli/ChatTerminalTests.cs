using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace RlhfSharp.Tests.Cli;

/// <summary>
/// Issue 15, <c>rlhf chat</c> at a real terminal: util-linux <c>script</c> gives it a pseudo-terminal, and the test
/// types into it as a person would: an edited line, ↑ to send it again, Ctrl-C while a reply streams (the terminal turns
/// it into SIGINT) and Ctrl-D to quit.
/// </summary>
public sealed class ChatTerminalTests : IDisposable
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-chat-tty-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    sealed class Terminal : IDisposable
    {
        readonly Process process;
        readonly StringBuilder seen = new();
        public Terminal(string command)
        {
            var psi = new ProcessStartInfo("script") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            // script runs the command through $SHELL -c. Debian's dash stays as the parent and, having seen the terminal's
            // SIGINT too, exits 130 when the command ends even though the command handled the Ctrl-C; bash execs the command.
            // "exec" makes every shell step aside, and SHELL is pinned to dash so the test does not depend on the runner's.
            // env --default-signal: a test run started in the background without job control (`dotnet test &` from a
            // script, some CI runners) inherits SIGINT and SIGQUIT ignored, and .NET keeps an inherited SIG_IGN (it then
            // never raises CancelKeyPress), so Ctrl-C reached nothing and the reply ran to its end. A person's shell
            // starts a foreground command with both at their defaults; so does this.
            foreach (var a in new[] { "-q", "-f", "-e", "-c", "exec env --default-signal=INT,QUIT " + command, "/dev/null" }) psi.ArgumentList.Add(a);
            psi.Environment["TERM"] = "xterm";
            psi.Environment["SHELL"] = "/bin/sh";
            process = Process.Start(psi)!;
            _ = Task.Run(async () =>
            {
                var buffer = new char[4096];
                int n;
                while ((n = await process.StandardOutput.ReadAsync(buffer)) > 0) lock (seen) seen.Append(buffer, 0, n);
            });
        }

        public string Seen { get { lock (seen) return seen.ToString(); } }

        /// <summary>Waits until the screen has shown <paramref name="text"/> <paramref name="times"/> times.</summary>
        public void WaitFor(string text, int times = 1, int seconds = 120)
        {
            var deadline = DateTime.UtcNow.AddSeconds(seconds);
            while (Count(Seen, text) < times)
            {
                if (DateTime.UtcNow > deadline || process.HasExited) throw new TimeoutException($"waited for {times} × '{text}'; the screen shows:\n{Seen}");
                Thread.Sleep(20);
            }
        }

        /// <summary>Waits until the reply streams: <paramref name="chars"/> more characters than the screen had at <paramref name="from"/>.</summary>
        public void WaitForGrowth(int from, int chars)
        {
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (Seen.Length < from + chars)
            {
                if (DateTime.UtcNow > deadline || process.HasExited) throw new TimeoutException("no reply streamed; the screen shows:\n" + Seen);
                Thread.Sleep(5);
            }
        }

        static int Count(string s, string text) { int n = 0; for (int i = s.IndexOf(text); i >= 0; i = s.IndexOf(text, i + 1)) n++; return n; }

        public void Type(string keys) { process.StandardInput.Write(keys); process.StandardInput.Flush(); }

        /// <summary>Presses Enter and waits until the screen has ended the line (one more new line than before).</summary>
        public void Send()
        {
            int lines = Count(Seen, "\n");
            Type("\r");
            WaitFor("\n", lines + 1);
        }

        public int Exit()
        {
            if (!process.WaitForExit(60_000)) { process.Kill(entireProcessTree: true); throw new TimeoutException("rlhf chat did not exit: " + Seen); }
            return process.ExitCode;
        }

        public void Dispose() { if (!process.HasExited) process.Kill(entireProcessTree: true); process.Dispose(); }
    }

    [SkippableFact]
    public void Lines_are_edited_and_recalled_ctrl_c_stops_a_reply_and_ctrl_d_quits()
    {
        Skip.If(!File.Exists("/usr/bin/script"), "util-linux script is not installed (it provides the pseudo-terminal)");
        string rlhf = Path.Combine(AppContext.BaseDirectory, "rlhf.dll"), saved = Path.Combine(tmp, "chat.json");
        using var t = new Terminal($"dotnet {rlhf} chat --model stories260k --temperature 0 --max-new-tokens 500 --min-new-tokens 500");
        t.WaitFor("> ");
        // "Lily wnt": ← ← puts the cursor before "nt"; "e" makes "Lily went"; Enter sends it. Ctrl-C as soon as the reply streams.
        t.Type("Lily wnt");
        t.Type("\x1b[D\x1b[D");
        t.Type("e");
        t.WaitFor("Lily went");
        // Enter ends the line on the screen; then the first words of the reply stream, and Ctrl-C stops them.
        t.Send();
        int before = t.Seen.Length;
        t.WaitForGrowth(before, 3);
        t.Type("\x03");
        t.WaitFor("(stopped)");
        t.WaitFor("> ", 2);
        // ↑ brings the line back; send it again, stop it again.
        before = t.Seen.Length;
        t.Type("\x1b[A");
        t.WaitForGrowth(before, 9);
        t.Send();
        before = t.Seen.Length;
        t.WaitForGrowth(before, 3);
        t.Type("\x03");
        t.WaitFor("(stopped)", 2);
        t.WaitFor("> ", 3);
        t.Type($"/save {saved}\r");
        t.WaitFor("(saved 4 messages");
        t.Type("\x04"); // Ctrl-D
        int code = t.Exit();
        Assert.True(code == 0, $"exit code {code}; the screen showed:\n{t.Seen}");

        var messages = JsonNode.Parse(File.ReadAllText(saved))!["messages"]!.AsArray();
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.Select(m => (string)m!["role"]!));
        Assert.Equal("Lily went", (string?)messages[0]!["content"]);
        Assert.Equal("Lily went", (string?)messages[2]!["content"]);
        // Stopped early: the replies are shorter than the 500 tokens they were forced to run to.
        Assert.All(new[] { messages[1], messages[3] }, m => Assert.True(((string)m!["content"]!).Length < 1000, (string?)m!["content"]));
    }
}
