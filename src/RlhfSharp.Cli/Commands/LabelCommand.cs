using System.CommandLine;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Labeling;
using RlhfSharp.Rewards;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// <c>rlhf label</c>: the human-feedback web app and its database. <c>serve</c> runs it, <c>add-annotator</c> makes
/// accounts, <c>import</c> adds items, <c>export</c> writes what <c>rlhf rm|sft|dpo|kto</c> read, and <c>simulate</c>
/// lets the pipeline's simulated annotators label through the same API.
/// </summary>
public static class LabelCommand
{
    public static Command Create()
    {
        var command = new Command("label", "Human feedback: a web app where annotators rank, compare, rate and write responses.");
        command.Subcommands.Add(Serve());
        command.Subcommands.Add(AddAnnotator());
        command.Subcommands.Add(Import());
        command.Subcommands.Add(Export());
        command.Subcommands.Add(Simulate());
        return command;
    }

    static Option<string> Db() => new("--db") { Description = "The label database (SQLite; created if missing).", Required = true };

    static Option<int> PerItem() => new("--per-item") { Description = "Different annotators who label each item.", DefaultValueFactory = _ => 3 };

    static Option<string?> TaskOption(string description) => new("--task") { Description = description + $" ({string.Join(", ", LabelTasks.Names)})." };

    static LabelTask? ParseTask(string? name) =>
        name is null ? null : LabelTasks.Parse(name) ?? throw new RlhfException($"--task: unknown task \"{name}\"; use one of {string.Join(", ", LabelTasks.Names)}");

    static Command Serve()
    {
        var db = Db();
        var urls = new Option<string>("--urls") { Description = "Addresses to listen on, ';'-separated (loopback by default).", DefaultValueFactory = _ => new LabelingOptions().Urls };
        var model = new Option<string?>("--model", "-m") { Description = "Generate candidate responses for --prompts with this model (HF folder, llama2.c .bin, or stories260k)." };
        var prompts = new Option<string?>("--prompts") { Description = "Prompts to label (any dataset file with a prompt field); with --model each gets K sampled responses." };
        var k = new Option<int>("--k") { Description = "Responses sampled per prompt.", DefaultValueFactory = _ => 4 };
        var task = TaskOption("Task for generated items; default rank (demo when there is no --model)");
        var perItem = PerItem();
        var sampling = new SamplingArguments(defaultSeed: 0);
        var command = new Command("serve", "Run the labelling web app (JSON API with bearer tokens, pages at /, dashboard at /admin).") { db, urls, model, prompts, k, task, perItem };
        sampling.AddTo(command);
        command.SetAction(r => Program.Run(() =>
        {
            var store = LabelStore.Open(r.GetValue(db)!);
            if (r.GetValue(prompts) is string file)
            {
                var texts = DatasetLoader.LoadPrompts(file).Records.Select(p => p.Prompt).Distinct().ToList();
                if (r.GetValue(model) is string name)
                {
                    var kind = ParseTask(r.GetValue(task)) ?? LabelTask.Rank;
                    var options = sampling.Read(r);
                    options.Validate();
                    using var pretrained = PretrainedModel.Load(name);
                    var fresh = texts.Where(t => !store.HasResponses(t, name)).ToList();
                    int added = 0;
                    int samples = kind switch { LabelTask.Pair => 2, LabelTask.Demonstrate => 1, _ => r.GetValue(k) };
                    foreach (var (prompt, responses) in CandidateGenerator.Generate(pretrained, fresh, samples, options))
                    {
                        if (responses.Count < (kind is LabelTask.Rank or LabelTask.Pair ? 2 : 1))
                        {
                            Console.Error.WriteLine($"skipped a prompt: the model gave {responses.Count} distinct response(s)");
                            continue;
                        }
                        if (store.AddItem(prompt, responses, kind, r.GetValue(perItem), name)) added++;
                    }
                    Console.Error.WriteLine($"{file}: {added} new {kind.Name()} items with responses from {name} ({texts.Count - fresh.Count} prompts had them already)");
                }
                else
                {
                    int added = texts.Count(t => store.AddItem(t, [], LabelTask.Demonstrate, r.GetValue(perItem), "import"));
                    Console.Error.WriteLine($"{file}: {added} new demo items");
                }
            }
            var server = LabelingServer.StartAsync(store, new LabelingOptions { Urls = r.GetValue(urls)! }).GetAwaiter().GetResult();
            Console.Error.WriteLine($"labelling {store.Path} on {string.Join(", ", server.Urls)} (dashboard: /admin); Ctrl+C stops.");
            server.WaitForShutdownAsync().GetAwaiter().GetResult();
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        }));
        return command;
    }

    static Command AddAnnotator()
    {
        var db = Db();
        var name = new Argument<string>("name") { Description = "The annotator's name (unique)." };
        var admin = new Option<bool>("--admin") { Description = "An admin token: opens the dashboard." };
        var command = new Command("add-annotator", "Create an annotator and print their token (shown once).") { name, db, admin };
        command.SetAction(r => Program.Run(() =>
        {
            var store = LabelStore.Open(r.GetValue(db)!);
            string token = store.AddAnnotator(r.GetValue(name)!, r.GetValue(admin));
            Console.Error.WriteLine($"added {(r.GetValue(admin) ? "admin" : "annotator")} \"{r.GetValue(name)!.Trim()}\"; the token (only its hash is stored):");
            Console.WriteLine(token);
            return 0;
        }));
        return command;
    }

    static Command Import()
    {
        var db = Db();
        var file = new Option<string>("--file", "-f") { Description = "Rows with prompt and responses (or chosen/rejected, or completion); any dataset format.", Required = true };
        var task = TaskOption("Task of every item; default by the row: 2+ responses rank (2: pair), 1 rate, none demo");
        var perItem = PerItem();
        var command = new Command("import", "Add items to label from a file of prompts and candidate responses.") { db, file, task, perItem };
        command.SetAction(r => Program.Run(() =>
        {
            var store = LabelStore.Open(r.GetValue(db)!);
            var (added, existing) = ItemImport.Import(store, r.GetValue(file)!, ParseTask(r.GetValue(task)), r.GetValue(perItem));
            Console.WriteLine($"added {added} items ({existing} already there)");
            return 0;
        }));
        return command;
    }

    static Command Export()
    {
        var db = Db();
        var format = new Option<string>("--format") { Description = "pairwise (rlhf rm/dpo), kwise (rlhf rm), sft (rlhf sft) or kto (rlhf kto).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "The JSONL file to write.", Required = true };
        var command = new Command("export", "Write the labels in the format a training command reads.") { db, format, output };
        command.SetAction(r => Program.Run(() =>
        {
            var kind = LabelExport.Parse(r.GetValue(format)!);
            string path = r.GetValue(db)!;
            if (!File.Exists(path)) throw new RlhfException($"{path}: label database not found");
            var store = LabelStore.Open(path);
            int rows = LabelExport.Write(store.Labels(), kind, r.GetValue(output)!);
            Console.WriteLine($"wrote {rows} {r.GetValue(format)} rows to {r.GetValue(output)}");
            return 0;
        }));
        return command;
    }

    static Command Simulate()
    {
        var url = new Option<string>("--url") { Description = "The labelling server.", DefaultValueFactory = _ => new LabelingOptions().Urls };
        var tokens = new Option<string[]>("--token") { Description = "An annotator token (repeatable: one simulated annotator each).", Required = true };
        var max = new Option<int>("--max") { Description = "Labels per annotator at most (0 = until nothing is left).", DefaultValueFactory = _ => 0 };
        var pool = new AnnotatorPoolConfig();
        var temperature = new Option<double>("--temperature") { Description = "Each annotator's noise τ in gold points (the pipeline's default).", DefaultValueFactory = _ => pool.Temperature };
        var seed = new Option<int>("--seed") { Description = "Seeds the annotators' choices.", DefaultValueFactory = _ => 0 };
        var model = new Option<string>("--gold-model") { Description = "The model whose fluency the gold rubric scores.", DefaultValueFactory = _ => "stories260k" };
        var command = new Command("simulate", "Label through the HTTP API with the pipeline's simulated annotators (gold rubric + noise).") { url, tokens, max, temperature, seed, model };
        command.SetAction(r => Program.Run(() =>
        {
            string address = r.GetValue(url)!;
            if (!Uri.TryCreate(address, UriKind.Absolute, out var baseUri) || baseUri.Scheme is not ("http" or "https"))
                throw new RlhfException($"--url {address}: give the server's address with its scheme, e.g. http://{address.Split("://")[^1]}");
            using var pretrained = PretrainedModel.Load(r.GetValue(model)!);
            var gold = new GoldRubric(VaderLexicon.Default, new FluencyScorer(pretrained.Model, pretrained.Tokenizer));
            using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
            var list = r.GetValue(tokens)!;
            var random = new Random(r.GetValue(seed));
            int total = 0;
            // One annotator after the other: the gold rubric runs a model, which one thread at a time should use.
            for (int i = 0; i < list.Length; i++)
            {
                var annotator = new SimulatedAnnotator(i, r.GetValue(temperature), 0, random.Next());
                var client = new LabelingClient(http, list[i]);
                try
                {
                    int done = new SimulatedLabeler(client, annotator, gold).RunAsync(r.GetValue(max)).GetAwaiter().GetResult();
                    string left = r.GetValue(max) > 0 && done == r.GetValue(max) ? "" : ": " + SimulatedLabeler.WhatIsLeft(client.MeAsync().GetAwaiter().GetResult());
                    Console.Error.WriteLine($"annotator {i + 1}: {done} labels{left}");
                    total += done;
                }
                // HttpClient's own words ("Connection refused (127.0.0.1:18082)") do not say what to do about it.
                catch (HttpRequestException e) when (e.StatusCode is null)
                {
                    throw new RlhfException($"cannot reach the labelling server at {address} ({e.Message}): start it with 'rlhf label serve --db FILE', or give its address with --url");
                }
                catch (HttpRequestException e) when (e.StatusCode == System.Net.HttpStatusCode.Unauthorized)
                {
                    throw new RlhfException($"--token number {i + 1} is not an annotator token of {address}: make one with 'rlhf label add-annotator NAME --db FILE' on the server's database");
                }
                catch (HttpRequestException e)
                {
                    throw new RlhfException($"the labelling server at {address} refused a request ({e.Message})");
                }
                catch (TaskCanceledException e) when (e.InnerException is TimeoutException)
                {
                    throw new RlhfException($"the labelling server at {address} did not answer within {http.Timeout.TotalSeconds:0} s");
                }
            }
            Console.WriteLine($"{total} labels from {list.Length} simulated annotators");
            return 0;
        }));
        return command;
    }
}
