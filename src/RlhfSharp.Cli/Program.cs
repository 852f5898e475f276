using System.CommandLine;

namespace RlhfSharp.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("rlhf: the ChatGPT-style RLHF stack (SFT, reward model, PPO and friends) on TorchSharp.");
        return root.Parse(args).Invoke();
    }
}
