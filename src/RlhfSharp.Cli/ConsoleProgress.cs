using System.Runtime.InteropServices;
using RlhfSharp.Training;
using Spectre.Console;

namespace RlhfSharp.Cli;

/// <summary>
/// Shows trainers' progress as Spectre.Console bars with ETA, one per stage, with the stage's latest key numbers.
/// Also turns Ctrl-C and SIGTERM into a cancellation the trainers honour by checkpointing first.
/// </summary>
public static class ConsoleProgress
{
    static readonly string[] Shown = ["loss", "eval_loss", "accuracy", "eval_accuracy", "reward_mean", "gold_mean", "kl"];

    public static T Run<T>(Func<IProgress<TrainingProgress>, Action<string>, CancellationToken, T> work)
    {
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            Console.Error.WriteLine("stopping: saving a checkpoint (Ctrl-C again to kill)…");
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cancel.Cancel(); });
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        try
        {
            // Off a terminal, live bars would be redrawn as whole blocks of text: plain lines instead.
            if (Console.IsErrorRedirected || !console.Profile.Capabilities.Interactive)
            {
                var plain = new PlainProgress(Console.Error, Shown);
                var skippedPlain = new Dictionary<string, double>();
                var report = new Progress(p =>
                {
                    if (p.Metrics.TryGetValue("skipped_steps", out double n) && n > skippedPlain.GetValueOrDefault(p.Stage))
                    {
                        skippedPlain[p.Stage] = n;
                        Console.Error.WriteLine($"warning: {p.Stage} step {p.Step}: the loss or gradient was NaN or infinite; the update was skipped ({n:0} skipped so far).");
                    }
                    plain.Report(p);
                });
                return work(report, Console.Error.WriteLine, cancel.Token);
            }
            return console.Progress().AutoClear(false).HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    var skipped = new Dictionary<string, double>();
                    var progress = new Progress(p =>
                    {
                        if (p.Metrics.TryGetValue("skipped_steps", out double n) && n > skipped.GetValueOrDefault(p.Stage))
                        {
                            skipped[p.Stage] = n;
                            console.MarkupLine($"[yellow]{Markup.Escape($"warning: {p.Stage} step {p.Step}: the loss or gradient was NaN or infinite; the update was skipped ({n:0} skipped so far).")}[/]");
                        }
                        if (!tasks.TryGetValue(p.Stage, out var task)) tasks[p.Stage] = task = ctx.AddTask(Markup.Escape(p.Stage), maxValue: p.TotalSteps);
                        task.MaxValue = p.TotalSteps;
                        task.Value = p.Step;
                        var numbers = Shown.Where(p.Metrics.ContainsKey).Select(k => $"{k} {PlainProgress.Number(p.Metrics[k])}");
                        task.Description = Markup.Escape($"{p.Stage,-14} {string.Join("  ", numbers)}");
                    });
                    return work(progress, line => console.MarkupLine($"[grey]{Markup.Escape(line)}[/]"), cancel.Token);
                });
        }
        finally { Console.CancelKeyPress -= onCancel; }
    }

    /// <summary>Reports synchronously on the calling thread (System.Progress would post to the thread pool and reorder).</summary>
    sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
