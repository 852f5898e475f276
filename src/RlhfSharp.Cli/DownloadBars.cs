using RlhfSharp.Hub;
using Spectre.Console;

namespace RlhfSharp.Cli;

/// <summary>
/// Hub downloads as Spectre.Console bars on the error stream, one per file, with bytes, rate and time left.
/// Inside another live display (a training stage's bars), where Spectre allows no second one, and when the error
/// stream is not a terminal: a line per file started and done.
/// </summary>
public sealed class DownloadBars : IDownloadDisplay
{
    /// <inheritdoc/>
    public T Show<T>(string title, Func<IProgress<DownloadProgress>, T> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        bool started = false;
        if (Console.IsErrorRedirected) return Lines(Console.Error.WriteLine, title, work); // plain lines: a log is not wrapped at 80 columns
        try
        {
            return console.Progress().AutoClear(false).HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                    new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    started = true;
                    var tasks = new Dictionary<string, ProgressTask>();
                    return work(new Reporter(p =>
                    {
                        if (!tasks.TryGetValue(p.File, out var task))
                            tasks[p.File] = task = ctx.AddTask(Markup.Escape($"{title} {p.File}"), maxValue: Math.Max(1, p.Total));
                        task.Value = p.Bytes;
                    }));
                });
        }
        catch (InvalidOperationException) when (!started)
        {
            return Lines(line => console.MarkupLine($"[grey]{Markup.Escape(line)}[/]"), title, work);
        }
    }

    /// <summary>A line when a file starts and one when it is done, with its rate: for logs, and inside another live display.</summary>
    static T Lines<T>(Action<string> write, string title, Func<IProgress<DownloadProgress>, T> work)
    {
        var started = new Dictionary<string, (DateTime At, long From)>();
        return work(new Reporter(p =>
        {
            if (!started.TryGetValue(p.File, out var s))
            {
                started[p.File] = s = (DateTime.UtcNow, p.Bytes);
                write($"downloading {title} {p.File} ({p.Total:N0} bytes{(p.Bytes > 0 ? $", resuming at {p.Bytes:N0}" : "")})");
            }
            if (p.Bytes == p.Total && s.From >= 0)
            {
                double seconds = Math.Max(1e-3, (DateTime.UtcNow - s.At).TotalSeconds);
                double rate = (p.Bytes - s.From) / seconds;
                write($"downloaded {title} {p.File}: {p.Total:N0} bytes in {seconds:0.0} s ({(rate >= 1e6 ? $"{rate / 1e6:0.0} MB/s" : $"{rate / 1e3:0.0} kB/s")})");
                started[p.File] = (s.At, -1);
            }
        }));
    }

    /// <summary>Reports on the calling thread (System.Progress would post to the thread pool and reorder).</summary>
    sealed class Reporter(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }
}
