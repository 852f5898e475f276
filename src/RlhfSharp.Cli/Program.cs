using System.CommandLine;
using RlhfSharp.Cli.Commands;

namespace RlhfSharp.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("rlhf: the ChatGPT-style RLHF stack (SFT, reward model, PPO and friends) on TorchSharp.")
        {
            GenerateCommand.Create(),
            ChatCommand.Create(),
            ConvertCommand.Create(),
            PipelineCommand.Create(),
            EvalCommand.Create(),
            ServeCommand.Create(),
            LoraCommand.Create(),
        };
        foreach (var stage in StageCommands.Create()) root.Subcommands.Add(stage);
        foreach (var stage in PreferenceCommands.Create()) root.Subcommands.Add(stage);
        foreach (var stage in GroupRlCommands.Create()) root.Subcommands.Add(stage);
        return root.Parse(args).Invoke();
    }

    /// <summary>
    /// Runs a command body: a user error prints one line naming the problem and exits 1; anything else
    /// prints its message (no stack trace unless RLHF_DEBUG is set) and exits 2.
    /// </summary>
    public static int Run(Func<int> body)
    {
        try { return body(); }
        catch (RlhfException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
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
            Console.Error.WriteLine($"error: {e.GetType().Name}: {e.Message}");
            return 2;
        }
    }
}
