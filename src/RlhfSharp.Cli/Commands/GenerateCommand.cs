using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

/// <summary><c>rlhf generate</c>: sample completions for one prompt, explicit token ids, or a file of prompts.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Hub id (org/name[@revision]), HF folder, llama2.c .bin, or built-in name (stories260k).", DefaultValueFactory = _ => "stories260k" };
        var prompt = new Option<string?>("--prompt", "-p") { Description = "Prompt text (BOS is added for LLaMA-family models)." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Comma-separated token ids, used exactly as given (no BOS added)." };
        var prompts = new Option<string?>("--prompts") { Description = "File of prompts: .txt (one per line) or .jsonl (field \"prompt\")." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per prompt: ids, new_ids, text, logprobs." };
        var batchSize = new Option<int>("--batch-size") { Description = "Prompts sampled together.", DefaultValueFactory = _ => 16 };
        var dtype = DtypeOption.Create();
        var ilqlBeta = IlqlBetaOption.Create();
        var sampling = new SamplingArguments();
        var command = new Command("generate", "Sample completions from a model with the KV-cache sampler.") { model, prompt, promptIds, prompts, json, batchSize, dtype, ilqlBeta };
        sampling.AddTo(command);
        command.SetAction(r => Program.Run(() =>
        {
            var sources = new[] { r.GetValue(prompt) is not null, r.GetValue(promptIds) is not null, r.GetValue(prompts) is not null }.Count(x => x);
            if (sources != 1) throw new RlhfException("give exactly one of --prompt, --prompt-ids or --prompts.");
            var options = sampling.Read(r);
            options.Validate();
            int batch = Math.Max(1, r.GetValue(batchSize));
            if (PretrainedSeq2SeqModel.IsSeq2Seq(r.GetValue(model)!))
                return GenerateSeq2Seq(r.GetValue(model)!, DtypeOption.Read(r, dtype), r.GetValue(prompt), r.GetValue(promptIds), r.GetValue(prompts), options, batch, r.GetValue(json),
                    pretrained => IlqlBetaOption.Apply(r, ilqlBeta, pretrained));
            // The memory check counts the KV cache of one batch of max_new_tokens (prompt lengths are known only after loading the tokenizer).
            using var pretrained = PretrainedModel.Load(r.GetValue(model)!, DtypeOption.Read(r, dtype), kvCache: (batch, options.MaxNewTokens));
            IlqlBetaOption.Apply(r, ilqlBeta, pretrained);
            var inputs = ReadPrompts(pretrained.EncodePrompt, r.GetValue(prompt), r.GetValue(promptIds), r.GetValue(prompts));
            var sampler = new Sampler(pretrained.Model, pretrained.Tokenizer);
            var results = new List<Completion>();
            void RunBatches(Action<int>? advance)
            {
                for (int start = 0; start < inputs.Count; start += batch)
                {
                    var chunk = inputs.Skip(start).Take(batch).ToList();
                    results.AddRange(sampler.Generate(chunk, options with { Seed = options.Seed + (ulong)start }));
                    advance?.Invoke(chunk.Count);
                }
            }
            if (inputs.Count > batch && !Console.IsErrorRedirected)
            {
                var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
                console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx => { var task = ctx.AddTask("generating", maxValue: inputs.Count); RunBatches(n => task.Increment(n)); });
            }
            else RunBatches(null);

            foreach (var c in results)
            {
                if (r.GetValue(json))
                {
                    var o = new JsonObject
                    {
                        ["ids"] = new JsonArray(c.Ids.Select(x => (JsonNode)x).ToArray()),
                        ["new_ids"] = new JsonArray(c.NewIds.Select(x => (JsonNode)x).ToArray()),
                        ["text"] = c.Text,
                        ["logprobs"] = new JsonArray(c.Logprobs.Select(x => (JsonNode)x).ToArray()),
                        ["finish_reason"] = c.FinishReason == FinishReason.Stop ? "stop" : "length",
                    };
                    Console.WriteLine(o.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
                }
                else
                {
                    Console.WriteLine(pretrained.Tokenizer.Decode(c.PromptIds) + c.Text);
                    if (results.Count > 1) Console.WriteLine();
                }
            }
            return 0;
        }));
        return command;
    }

    /// <summary>An encoder-decoder (T5): the prompt ids are the encoder input, new_ids the decoder tokens after the start token.</summary>
    static int GenerateSeq2Seq(string spec, TorchSharp.torch.ScalarType dtype, string? prompt, string? promptIds, string? file, SamplingOptions options, int batch, bool json,
        Action<PretrainedSeq2SeqModel> ilql)
    {
        using var pretrained = PretrainedSeq2SeqModel.Load(spec, dtype);
        ilql(pretrained);
        var inputs = ReadPrompts(pretrained.EncodePrompt, prompt, promptIds, file);
        var sampler = new Seq2SeqSampler(pretrained.Model, pretrained.Tokenizer);
        for (int start = 0; start < inputs.Count; start += batch)
            foreach (var c in sampler.Generate(inputs.Skip(start).Take(batch).ToList(), options with { Seed = options.Seed + (ulong)start }))
            {
                if (json)
                {
                    var o = new JsonObject
                    {
                        ["ids"] = new JsonArray(c.PromptIds.Select(x => (JsonNode)x).ToArray()),
                        ["new_ids"] = new JsonArray(c.NewIds.Select(x => (JsonNode)x).ToArray()),
                        ["text"] = c.Text,
                        ["logprobs"] = new JsonArray(c.Logprobs.Select(x => (JsonNode)x).ToArray()),
                        ["finish_reason"] = c.FinishReason == FinishReason.Stop ? "stop" : "length",
                    };
                    Console.WriteLine(o.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
                }
                else Console.WriteLine(c.Text);
            }
        return 0;
    }

    static List<int[]> ReadPrompts(Func<string, int[]> encodePrompt, string? prompt, string? promptIds, string? file)
    {
        if (prompt is not null) return [encodePrompt(prompt)];
        if (promptIds is not null)
        {
            var ids = promptIds.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select((s, i) =>
                int.TryParse(s, out var id) ? id : throw new RlhfException($"--prompt-ids: item {i + 1} ('{s}') is not an integer.")).ToArray();
            if (ids.Length == 0) throw new RlhfException("--prompt-ids: no ids given.");
            return [ids];
        }
        if (!File.Exists(file)) throw new RlhfException($"{file}: file not found.");
        var result = new List<int[]>();
        int line = 0;
        foreach (var text in File.ReadLines(file!))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            if (file!.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            {
                JsonNode? node;
                try { node = JsonNode.Parse(text); }
                catch (JsonException e) { throw new RlhfException($"{file}:{line}: invalid JSON ({e.Message})."); }
                var p = (node as JsonObject)?["prompt"] ?? throw new RlhfException($"{file}:{line}: missing field 'prompt'.");
                if (p.GetValueKind() != JsonValueKind.String) throw new RlhfException($"{file}:{line}: field 'prompt' must be a string.");
                result.Add(encodePrompt(p.GetValue<string>()));
            }
            else result.Add(encodePrompt(text));
        }
        if (result.Count == 0) throw new RlhfException($"{file}: no prompts in the file.");
        return result;
    }
}
