using System.CommandLine;
using RlhfSharp.Cli.Commands;
using RlhfSharp.Distributed;
using RlhfSharp.Runtime;

namespace RlhfSharp.Cli;

public static class Program
{
    /// <summary>Where errors go: the console's error stream, kept when the other ranks of an mpirun silence theirs.</summary>
    static TextWriter errors = Console.Error;

    public static int Main(string[] args)
    {
        // Before anything can load LibTorch: oneMKL's Intel kernels on AMD CPUs (docs/ARCHITECTURE.md, issue #17).
        MklCodePath.Apply();
        // Freed tensor memory back to the OS, so a large model's step peaks at what it holds (HeapReturn's remarks).
        HeapReturn.Apply();
        if (Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_RANK") is string rank && rank != "0") errors = QuietRank.Silence();
        RlhfSharp.Hub.HubResolver.DefaultDisplay = new DownloadBars();
        var root = new RootCommand("rlhf: the ChatGPT-style RLHF stack (SFT, reward model, PPO and friends) on TorchSharp.")
        {
            GenerateCommand.Create(),
            ChatCommand.Create(),
            ConvertCommand.Create(),
            PipelineCommand.Create(),
            EvalCommand.Create(),
            EvalRmCommand.Create(),
            ServeCommand.Create(),
            LabelCommand.Create(),
            LoraCommand.Create(),
            TokenizeCommand.Create(),
            SynthCommand.Create(),
        };
        foreach (var stage in StageCommands.Create()) root.Subcommands.Add(stage);
        return root.Parse(args).Invoke();
    }

    /// <summary>
    /// Runs a command body: a user error prints one line naming the problem and exits 1; anything else
    /// prints its message (no stack trace unless RLHF_DEBUG is set) and exits 2.
    /// </summary>
    public static int Run(Func<int> body)
    {
        // The run's log names the oneMKL path in force (stderr, so piped output stays clean; silenced on ranks > 0).
        Console.Error.WriteLine(MklCodePath.Status);
        try { return body(); }
        catch (RlhfException e)
        {
            return Fail($"error: {e.Message}", 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && Environment.GetEnvironmentVariable("RLHF_DEBUG") is null)
        {
            // Disk full, a read-only or missing folder: the OS message names the path.
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled.");
            return 130;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("RLHF_DEBUG") is null)
        {
            return Fail($"error: {e.GetType().Name}: {e.Message}", 2);
        }
    }

    /// <summary>
    /// Prints the error (with its rank under mpirun) and returns the exit code; under mpirun with several ranks it ends
    /// them all, since the ranks still training would wait for this one in their next all-reduce forever.
    /// </summary>
    static int Fail(string message, int code)
    {
        errors.WriteLine(DataParallel.Size > 1 ? $"rank {DataParallel.Rank}: {message}" : message);
        errors.Flush();
        if (DataParallel.World is { Size: > 1 } world) world.Abort(code);
        return code;
    }
}
