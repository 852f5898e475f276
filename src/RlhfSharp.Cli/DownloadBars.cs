using RlhfSharp.Hub;
using Spectre.Console;

namespace RlhfSharp.Cli;

/// <summary>
/// Hub downloads as Spectre.Console bars on the error stream, one per file, with bytes, rate and time left.
/// Inside another live display (a training stage's bars) Spectre allows no second one: then one line per file.
/// </summary>
public sealed class DownloadBars : IDownloadDisplay
{
    /// <inheritdoc/>
    public T Show<T>(string title, Func<IProgress<DownloadProgress>, T> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        bool started = false;
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
            var announced = new HashSet<string>();
            return work(new Reporter(p =>
            {
                if (announced.Add(p.File)) console.MarkupLine($"[grey]{Markup.Escape($"downloading {title} {p.File} ({p.Total:N0} bytes)")}[/]");
            }));
        }
    }

    /// <summary>Reports on the calling thread (System.Progress would post to the thread pool and reorder).</summary>
    sealed class Reporter(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }
}
