using System.CommandLine;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Synthesis;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// <c>rlhf synth</c>: data from a teacher behind any OpenAI-compatible endpoint (self-instruct instructions,
/// demonstrations, AI feedback). Each subcommand appends finished items to its output as it goes, so rerunning the
/// same command after an interruption continues without paying for finished items again.
/// </summary>
public static class SynthCommand
{
    sealed record Common(Option<string> BaseUrl, Option<string> Model, Option<string> KeyVariable, Option<int> Concurrency,
        Option<int> Retries, Option<double> Temperature, Option<int> MaxTokens, Option<string> Out);

    static Common AddCommon(Command command, double temperature)
    {
        var c = new Common(
            new Option<string>("--base-url") { Description = "The teacher's OpenAI-compatible base URL, up to /v1 (e.g. http://127.0.0.1:8000/v1).", Required = true },
            new Option<string>("--teacher-model") { Description = "The model name sent with each request.", Required = true },
            new Option<string>("--api-key-env") { Description = "Environment variable holding the API key.", DefaultValueFactory = _ => "OPENAI_API_KEY" },
            new Option<int>("--concurrency") { Description = "Requests in flight at once.", DefaultValueFactory = _ => 4 },
            new Option<int>("--max-retries") { Description = "Retries after 429/5xx or a dropped connection, with exponential backoff.", DefaultValueFactory = _ => 3 },
            new Option<double>("--temperature") { Description = "The teacher's sampling temperature.", DefaultValueFactory = _ => temperature },
            new Option<int>("--max-tokens") { Description = "Longest reply in tokens.", DefaultValueFactory = _ => 1024 },
            new Option<string>("--out", "-o") { Description = "Output JSONL; an existing file is continued (finished items are skipped).", Required = true });
        foreach (var o in new Option[] { c.BaseUrl, c.Model, c.KeyVariable, c.Concurrency, c.Retries, c.Temperature, c.MaxTokens, c.Out }) command.Options.Add(o);
        return c;
    }

    static Teacher Teacher(ParseResult r, Common c)
    {
        string url = r.GetValue(c.BaseUrl)!;
        if (!Uri.TryCreate(url.TrimEnd('/') + "/", UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new RlhfException($"--base-url {url}: not an http:// or https:// URL.");
        return new Teacher(new TeacherOptions
        {
            BaseUrl = uri, Model = r.GetValue(c.Model)!, ApiKeyVariable = r.GetValue(c.KeyVariable)!, Concurrency = r.GetValue(c.Concurrency),
            MaxRetries = r.GetValue(c.Retries), Temperature = r.GetValue(c.Temperature), MaxTokens = r.GetValue(c.MaxTokens),
        });
    }

    /// <summary>Progress lines on stderr, at most one a second (plain lines: they read the same in a log file).</summary>
    static Action<string> Reporter()
    {
        long last = 0;
        return line =>
        {
            long now = Environment.TickCount64;
            if (now - Interlocked.Read(ref last) < 1000) return;
            Interlocked.Exchange(ref last, now);
            Console.Error.WriteLine(line);
        };
    }

    public static Command Create()
    {
        var command = new Command("synth", "Make training data with a teacher model behind an OpenAI-compatible endpoint (self-instruct, demonstrations, AI feedback).");
        command.Subcommands.Add(SelfInstructCommand());
        command.Subcommands.Add(DemonstrationsCommand());
        command.Subcommands.Add(FeedbackCommand());
        return command;
    }

    static Command SelfInstructCommand()
    {
        var command = new Command("self-instruct", "Grow new instructions from the 175 self-instruct seed tasks (ROUGE-L < 0.7 to the pool), then an input and output for each: prompt/completion rows for rlhf sft.");
        var c = AddCommon(command, temperature: 0.7);
        var count = new Option<int>("--count", "-n") { Description = "New instructions to keep.", DefaultValueFactory = _ => 100 };
        var seeds = new Option<string?>("--seeds") { Description = "Seed tasks JSONL (self-instruct's format); default: the shipped 175." };
        var seed = new Option<int>("--seed") { Description = "Seed of the in-context sampling.", DefaultValueFactory = _ => 42 };
        command.Options.Add(count); command.Options.Add(seeds); command.Options.Add(seed);
        command.SetAction(r => Program.Run(() =>
        {
            var teacher = Teacher(r, c);
            string seedPath = r.GetValue(seeds) ?? Path.Combine(AppContext.BaseDirectory, "data", "self-instruct", "seed_tasks.jsonl");
            var tasks = SelfInstruct.LoadSeeds(seedPath);
            string output = r.GetValue(c.Out)!;
            using var requests = SynthJournal.Open(output + ".requests.jsonl");
            using var journal = SynthJournal.Open(output);
            var run = new SelfInstruct(teacher, new SelfInstructOptions { Count = r.GetValue(count), Seed = r.GetValue(seed) });
            run.RunAsync(tasks, requests, journal, Reporter()).GetAwaiter().GetResult();
            Console.WriteLine($"{journal.Records.Count} instances in {output}; teacher: {teacher.UsageLine()} this run.");
            return 0;
        }));
        return command;
    }

    static Command DemonstrationsCommand()
    {
        var command = new Command("demos", "Ask the teacher to answer every prompt of a file: prompt/completion rows for rlhf sft.");
        var c = AddCommon(command, temperature: 0.7);
        var prompts = new Option<string>("--prompts") { Description = "Prompts file (.txt one per line, or any dataset with a \"prompt\" field).", Required = true };
        var system = new Option<string?>("--system") { Description = "A system message sent before each prompt." };
        command.Options.Add(prompts); command.Options.Add(system);
        command.SetAction(r => Program.Run(() =>
        {
            var teacher = Teacher(r, c);
            var list = ReadPrompts(r.GetValue(prompts)!);
            string output = r.GetValue(c.Out)!;
            using var journal = SynthJournal.Open(output);
            TeacherDemonstrations.RunAsync(teacher, list, journal, r.GetValue(system), Reporter()).GetAwaiter().GetResult();
            Console.WriteLine($"{journal.Records.Count} demonstrations in {output}; teacher: {teacher.UsageLine()} this run.");
            return 0;
        }));
        return command;
    }

    static Command FeedbackCommand()
    {
        var command = new Command("feedback", "AI feedback (RLAIF): the teacher compares the policy's responses under a constitution; ranking rows for rlhf rm, or pairs for rlhf dpo, with the teacher's reasons.");
        var c = AddCommon(command, temperature: 0.0);
        var candidates = new Option<string?>("--candidates") { Description = "JSONL of prompt + responses to compare." };
        var policy = new Option<string?>("--policy") { Description = "Sample the responses from this model instead (with --prompts and --samples)." };
        var prompts = new Option<string?>("--prompts") { Description = "Prompts for --policy." };
        var samples = new Option<int>("--samples") { Description = "Responses per prompt sampled from --policy.", DefaultValueFactory = _ => 2 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Longest sampled response.", DefaultValueFactory = _ => 64 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the policy's sampling.", DefaultValueFactory = _ => 0UL };
        var constitution = new Option<string?>("--constitution") { Description = "A text file with the principles to judge by (default: a short helpful-and-harmless constitution)." };
        var pairwise = new Option<bool>("--pairwise") { Description = "Write chosen/rejected pairs (best vs worst) instead of rankings." };
        foreach (var o in new Option[] { candidates, policy, prompts, samples, maxNew, seed, constitution, pairwise }) command.Options.Add(o);
        command.SetAction(r => Program.Run(() =>
        {
            var teacher = Teacher(r, c);
            var items = r.GetValue(candidates) is string file
                ? r.GetValue(policy) is null ? AiFeedback.LoadCandidates(file) : throw new RlhfException("give --candidates or --policy, not both.")
                : r.GetValue(policy) is string model
                    ? Sample(model, ReadPrompts(r.GetValue(prompts) ?? throw new RlhfException("--policy needs --prompts.")), r.GetValue(samples), r.GetValue(maxNew), r.GetValue(seed))
                    : throw new RlhfException("give --candidates FILE, or --policy MODEL with --prompts FILE.");
            string output = r.GetValue(c.Out)!;
            using var journal = SynthJournal.Open(output);
            using var skipped = SynthJournal.Open(output + ".skipped.jsonl");
            new AiFeedback(teacher, Constitution.Load(r.GetValue(constitution)), r.GetValue(pairwise)).RunAsync(items, journal, skipped, Reporter()).GetAwaiter().GetResult();
            Console.WriteLine($"{journal.Records.Count} ranked prompts in {output}, {skipped.Records.Count} undecided in {skipped.Path}; teacher: {teacher.UsageLine()} this run.");
            return 0;
        }));
        return command;
    }

    static List<string> ReadPrompts(string path) =>
        path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase)
            ? File.Exists(path) ? File.ReadAllLines(path).Where(l => l.Trim().Length > 0).ToList() : throw new RlhfException($"--prompts {path}: no such file.")
            : DatasetLoader.LoadPrompts(path).Records.Select(p => p.Prompt).ToList();

    /// <summary>K samples per prompt from the policy at temperature 1 (the candidates RLAIF's labeller compares).</summary>
    static List<Candidates> Sample(string model, List<string> prompts, int k, int maxNewTokens, ulong seed)
    {
        if (k < 2) throw new RlhfException($"--samples must be at least 2, got {k}.");
        using var pretrained = PretrainedModel.Load(model);
        var sampler = new Sampler(pretrained.Model, pretrained.Tokenizer);
        var result = new List<Candidates>();
        for (int i = 0; i < prompts.Count; i++)
        {
            var ids = pretrained.Tokenizer.Encode(prompts[i], pretrained.AddsBos);
            var completions = sampler.Generate(Enumerable.Repeat(ids, k).ToList(),
                new SamplingOptions { Temperature = 1.0, MaxNewTokens = maxNewTokens, Seed = seed + (ulong)i });
            result.Add(new Candidates(prompts[i], completions.Select(x => x.Text).ToList()));
        }
        return result;
    }
}
