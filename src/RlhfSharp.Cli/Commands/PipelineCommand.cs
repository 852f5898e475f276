using System.CommandLine;
using System.Text.Json;
using RlhfSharp.Pipeline;
using RlhfSharp.Recipes;
using Spectre.Console;

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
        var command = new Command("pipeline", "Run SFT → reward model → PPO on the built-in 'kinder stories' task (or a recipe) and write a report.") { recipe, set, output, resume };
        command.SetAction(r => Program.Run(() =>
        {
            var config = Recipe.Load<PipelineConfig>(r.GetValue(recipe), r.GetValue(set));
            string dir = r.GetValue(output) ?? Path.Combine("runs", config.Name);
            if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any() && !r.GetValue(resume))
                throw new RlhfException($"{dir} already holds a run: pass --resume to continue it, or --out to start another.");
            RlhfSharp.Checkpoints.Durable.CheckWritable(dir);
            var summary = ConsoleProgress.Run((progress, log, cancel) =>
                new KinderStoriesPipeline(config, dir) { Progress = progress, Log = log }.Run(cancel));
            var table = new Table().AddColumns("policy", "gold mean", "gold 95% CI", "proxy (RM)", "KL to SFT");
            foreach (var (name, s) in summary.Policies)
                table.AddRow(name, $"{s.GoldMean:0.000}", $"[[{s.GoldCi95[0]:0.000}, {s.GoldCi95[1]:0.000}]]", $"{s.ProxyMean:0.000}", $"{s.KlToSft:0.000}");
            AnsiConsole.Write(table);
            Console.WriteLine($"RM accuracy {summary.RmAccuracy:0.000}, annotator–gold agreement {summary.AnnotatorGoldAgreement:0.000}");
            Console.WriteLine($"report: {Path.Combine(dir, "report.html")}");
            return 0;
        }));
        return command;
    }
}
