using System.Text;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using RlhfSharp.Data;

namespace RlhfSharp.Synthesis;

/// <summary>Self-instruct's knobs, with the paper's values (Wang et al. 2022 §2.2; bootstrap_instructions.py).</summary>
public sealed record SelfInstructOptions
{
    /// <summary>New instructions to keep.</summary>
    public int Count { get; init; } = 100;
    /// <summary>In-context instructions per request: 8 (num_prompt_instructions), of which …</summary>
    public int PromptInstructions { get; init; } = 8;
    /// <summary>… up to 2 machine-written once there are some (the paper's 6 human + 2 model).</summary>
    public int MachineInstructions { get; init; } = 2;
    /// <summary>Seed of the in-context sampling; a rerun with the same seed and teacher asks the same questions.</summary>
    public int Seed { get; init; } = 42;
    /// <summary>Requests that may keep nothing before the run gives up (a teacher that cannot write lists).</summary>
    public int MaxFruitlessRequests { get; init; } = 50;
}

/// <summary>
/// Self-instruct (Wang et al. 2022): grow a pool of task instructions from the 175 human-written seeds by asking a
/// teacher to continue a numbered list of sampled instructions, keep the new ones that pass
/// <see cref="InstructionFilter"/>, then ask the teacher for an input and output for each. Every request's outcome
/// is journalled (<c>&lt;out&gt;.requests.jsonl</c>) and every finished instance is a line of the output, so a rerun
/// pays for nothing twice. The instance prompt is this project's own (one in-context example, input first); the paper
/// also generates classification tasks output-first, which is not done here.
/// </summary>
public sealed class SelfInstruct(Teacher teacher, SelfInstructOptions options)
{
    /// <summary>One seed task: its instruction and one example instance.</summary>
    public sealed record SeedTask(string Instruction, string Input, string Output);

    /// <summary>Reads self-instruct's <c>seed_tasks.jsonl</c> (instruction + instances[0]); errors name the line.</summary>
    public static List<SeedTask> LoadSeeds(string path)
    {
        var seeds = new List<SeedTask>();
        foreach (var raw in DatasetReader.Read(path))
        {
            if (raw.Error is not null) throw new RlhfException($"{raw.Where}: {raw.Error}");
            var f = raw.Fields!;
            string instruction = f["instruction"]?.GetValue<string>() ?? throw new RlhfException($"{raw.Where}: no \"instruction\".");
            var instance = (f["instances"] as JsonArray)?.FirstOrDefault() as JsonObject;
            seeds.Add(new SeedTask(instruction, instance?["input"]?.GetValue<string>() ?? "", instance?["output"]?.GetValue<string>() ?? ""));
        }
        if (seeds.Count < MinSeeds) throw new RlhfException($"{path}: {seeds.Count} seed tasks; self-instruct needs at least {MinSeeds}.");
        return seeds;
    }
    const int MinSeeds = 2; // one to show, one to sample

    /// <summary>The prompt of request <paramref name="request"/>: "Come up with a series of tasks:" and a numbered list to continue.</summary>
    public string ListPrompt(IReadOnlyList<SeedTask> seeds, IReadOnlyList<string> machine, int request)
    {
        // Not HashCode.Combine: .NET randomises it per process, and a rerun must ask the same questions.
        var rng = new Random(unchecked(options.Seed * 1_000_003 + request));
        var chosen = machine.OrderBy(_ => rng.Next()).Take(options.MachineInstructions).ToList();
        chosen.AddRange(seeds.Select(s => s.Instruction).OrderBy(_ => rng.Next()).Take(options.PromptInstructions - chosen.Count));
        chosen = chosen.OrderBy(_ => rng.Next()).ToList();
        var text = new StringBuilder("Come up with a series of tasks:\n");
        for (int i = 0; i < chosen.Count; i++) text.Append($"{i + 1}. {chosen[i]}\n");
        return text.Append($"{chosen.Count + 1}.").ToString();
    }

    /// <summary>The instance prompt: one seed example, then the new instruction, asking for "Input:" and "Output:".</summary>
    public static string InstancePrompt(SeedTask example, string instruction) =>
        "Write one example for the task: an input (or \"Input: <noinput>\" if the task needs none) and the correct output.\n\n" +
        $"Task: {example.Instruction}\nInput: {(example.Input.Length == 0 ? "<noinput>" : example.Input)}\nOutput: {example.Output}\n\n" +
        $"Task: {instruction}\nInput:";

    /// <summary>The input and output in a reply to <see cref="InstancePrompt"/>, or null when there is no output.</summary>
    public static (string Input, string Output)? ParseInstance(string reply)
    {
        string text = "Input:" + reply;
        int o = text.IndexOf("Output:", StringComparison.Ordinal);
        if (o < 0) return null;
        int i = text.LastIndexOf("Input:", o, StringComparison.Ordinal);
        string input = text[(i + "Input:".Length)..o].Trim();
        string output = text[(o + "Output:".Length)..];
        int next = output.IndexOf("\nTask:", StringComparison.Ordinal);
        if (next >= 0) output = output[..next];
        output = output.Trim();
        if (input is "<noinput>" or "<no input>" or "None") input = "";
        return output.Length == 0 ? null : (input, output);
    }

    /// <summary>Runs both phases; <paramref name="report"/> receives one line per request batch and per instance.</summary>
    public async Task RunAsync(IReadOnlyList<SeedTask> seeds, SynthJournal requests, SynthJournal output, Action<string>? report = null,
        CancellationToken cancel = default)
    {
        var kept = requests.Records.SelectMany(r => (r["kept"] as JsonArray ?? []).Select(k => k!.GetValue<string>())).ToList();
        int request = requests.Records.Count, fruitless = 0;
        while (kept.Count < options.Count)
        {
            int batch = teacher.Concurrency;
            var prompts = Enumerable.Range(request, batch).Select(r => (r, ListPrompt(seeds, kept, r))).ToList();
            var replies = await Task.WhenAll(prompts.Select(p => teacher.AskAsync([new UserChatMessage(p.Item2)], cancel: cancel)));
            for (int b = 0; b < batch; b++) // in request order, so the pool grows the same way on every run
            {
                var keptNow = new JsonArray();
                var rejected = new JsonObject();
                foreach (var candidate in InstructionFilter.SplitList(replies[b].Text))
                {
                    if (kept.Count >= options.Count) break;
                    string? problem = InstructionFilter.QualityProblem(candidate);
                    if (problem is null && InstructionFilter.MaxSimilarity(candidate, seeds.Select(s => s.Instruction).Concat(kept)) >= InstructionFilter.MaxRougeL)
                        problem = "ROUGE-L ≥ 0.7 to the pool";
                    if (problem is null) { kept.Add(candidate); keptNow.Add(candidate); }
                    else rejected[problem] = (rejected[problem]?.GetValue<int>() ?? 0) + 1;
                }
                fruitless = keptNow.Count == 0 ? fruitless + 1 : 0;
                requests.Append(new JsonObject { ["id"] = $"request-{prompts[b].r}", ["kept"] = keptNow, ["rejected"] = rejected });
            }
            request += batch;
            report?.Invoke($"instructions: {kept.Count}/{options.Count} kept after {request} requests ({teacher.UsageLine()})");
            if (fruitless >= options.MaxFruitlessRequests)
                throw new RlhfException($"the teacher's last {fruitless} replies gave no instruction that passes the filters " +
                                        $"(see {requests.Path} for the reasons); is it a model that can continue a numbered list?");
        }

        var todo = kept.Select((instruction, i) => (Id: $"instance-{i}", Index: i, Instruction: instruction)).Where(x => !output.IsDone(x.Id) && !requests.IsDone($"no-output-{x.Id}")).ToList();
        int finished = kept.Count - todo.Count, skipped = 0;
        await Task.WhenAll(todo.Select(async item =>
        {
            var example = seeds[new Random(unchecked(options.Seed * 1_000_003 - 1 - item.Index)).Next(seeds.Count)];
            var reply = await teacher.AskAsync([new UserChatMessage(InstancePrompt(example, item.Instruction))], cancel: cancel);
            var parsed = ParseInstance(reply.Text);
            var record = new JsonObject { ["id"] = item.Id, ["instruction"] = item.Instruction };
            if (parsed is var (input, outputText))
            {
                record["input"] = input;
                record["output"] = outputText;
                // The prompt/completion pair rlhf sft reads, Alpaca's way of joining an instruction and its input.
                record["prompt"] = input.Length == 0 ? item.Instruction : item.Instruction + "\n\n" + input;
                record["completion"] = " " + outputText;
                output.Append(record);
                Interlocked.Increment(ref finished);
            }
            else
            {
                Interlocked.Increment(ref skipped);
                requests.Append(new JsonObject { ["id"] = $"no-output-{item.Id}", ["instruction"] = item.Instruction, ["reply"] = reply.Text });
            }
            report?.Invoke($"instances: {Volatile.Read(ref finished)}/{kept.Count} written, {Volatile.Read(ref skipped)} replies without an output");
        }));
    }
}
