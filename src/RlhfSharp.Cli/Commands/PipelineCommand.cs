using System.CommandLine;
using System.Text.Json;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;

namespace RlhfSharp.Cli.Commands;

/// <summary><c>rlhf pipeline</c>: the whole InstructGPT recipe (feedback → SFT → RM → PPO → evaluation) in one run folder.</summary>
public static class PipelineCommand
{
    public static Command Create()
    {
        var recipe = new Option<string?>("--recipe", "-r") { Description = "Recipe file (JSON); default: the built-in kinder-stories recipe." };
        var set = new Option<string[]>("--set") { Description = "Override a recipe value: --set ppo.steps=20 (repeatable)." };
        var output = new Option<string?>("--out", "-o") { Description = "Run folder (default runs/<recipe name>)." };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out: finished stages are skipped, a stopped one resumes from its checkpoint." };
        var algo = new Option<string?>("--algo", "-a")
        {
            Description = "Methods to train from the same SFT model and RM and compare, comma-separated, or 'all': " +
                          string.Join(",", Enum.GetValues<AlignmentMethod>().Select(Name)) + " (default: ppo, or the recipe's algos).",
        };
        var check = new Option<bool>("--check") { Description = "Check the recipe and --set values, print the resolved recipe, and stop (nothing is loaded or written)." };
        var command = new Command("pipeline", "Run SFT → reward model → PPO (or the methods of --algo) on the built-in 'kinder stories' task (or a recipe) and write a report.")
            { recipe, set, output, resume, algo, check };
        command.SetAction(r => Program.Run(() =>
        {
            if (RlhfSharp.Distributed.DataParallel.Size > 1)
                throw new RlhfException("rlhf pipeline does not run under mpirun: run its stages (rlhf sft, rm, ppo) with mpirun instead (docs/distributed.md).");
            var config = Recipe.Load<PipelineConfig>(r.GetValue(recipe), r.GetValue(set));
            if (r.GetValue(algo) is string list) config = config with { Algos = ParseMethods(list) };
            if (r.GetValue(check)) { Console.WriteLine(Recipe.Serialize(config)); return 0; }
            string dir = r.GetValue(output) ?? Path.Combine("runs", config.Name);
            RunFolder.Check(dir, config, r.GetValue(resume));
            RlhfSharp.Checkpoints.Durable.CheckWritable(dir);
            PipelineSummary summary;
            try
            {
                summary = ConsoleProgress.Run((progress, log, cancel) =>
                    new KinderStoriesPipeline(config, dir) { Progress = progress, Log = log }.Run(cancel));
            }
            catch (RlhfException) { RunFolder.RemoveIfUnstarted(dir); throw; }
            foreach (var line in SummaryTable.Lines(summary)) Console.WriteLine(line);
            Console.WriteLine($"report: {Path.Combine(dir, "report.html")}");
            return 0;
        }));
        return command;
    }

    static string Name(AlignmentMethod m) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(m.ToString());

    /// <summary>"ppo,dpo,grpo" or "all" → the methods, in the order given; an unknown name is an error listing the known ones.</summary>
    internal static AlignmentMethod[] ParseMethods(string list)
    {
        var all = Enum.GetValues<AlignmentMethod>();
        if (list.Trim() == "all") return all;
        var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0) throw new RlhfException("--algo: no method named; give e.g. --algo ppo,dpo,grpo or --algo all.");
        return names.Select(n => all.FirstOrDefault(m => Name(m) == n.Replace('-', '_').ToLowerInvariant(), (AlignmentMethod)(-1)) is var m && (int)m >= 0 ? m
            : throw new RlhfException($"--algo: unknown method '{n}'; known: {string.Join(", ", all.Select(Name))}, all.")).ToArray();
    }
}
