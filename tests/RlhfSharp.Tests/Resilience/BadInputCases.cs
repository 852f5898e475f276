using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;

namespace RlhfSharp.Tests.Resilience;

/// <summary>One malformed input given to the CLI, and what the error message must name (a file with its line, a key, a value).</summary>
public sealed record BadInput(string Name, string[] Args, string[] Mentions)
{
    /// <summary>An --out folder the failing command must not create.</summary>
    public string? FreshOut { get; init; }
    /// <summary>Texts the error must not show (a temporary file's name, a wrong diagnosis).</summary>
    public string[] Forbidden { get; init; } = [];
    /// <summary>Issue #16's classes: all of them run in the short version too.</summary>
    public bool Always => Name.StartsWith("hardening/", StringComparison.Ordinal);
    public override string ToString() => Name;
}

/// <summary>
/// Writes the malformed inputs of the fuzz test (issue #7 item 4) into a folder and lists the CLI calls that read them:
/// broken JSON lines, wrong record shapes, missing and mistyped fields, empty and huge strings, invalid UTF-8, corrupt
/// gzip/CSV/Parquet, unknown and mistyped recipe keys, out-of-range settings, broken model folders (config, weights with
/// wrong shapes, tokenizers that do not fit), and resume state that belongs to another model. Each call is built from
/// the pieces programmatically, so the list grows by data kinds × defects.
/// </summary>
internal sealed partial class BadInputCases(string dir, string run, string modelDir, string stoppedRun)
{
    readonly List<BadInput> cases = [];
    int fresh;

    // A good record of each data kind: the defects are applied at line 3 after two good lines.
    static readonly Dictionary<string, string> Good = new()
    {
        ["demo"] = """{"prompt": "Tell a story.", "completion": " Once upon a time."}""",
        ["pref"] = """{"prompt": "Tell a story.", "chosen": " A nice story.", "rejected": " No."}""",
        ["prompt"] = """{"prompt": "Tell a story."}""",
        ["label"] = """{"prompt": "Tell a story.", "completion": " A nice story.", "label": true}""",
    };

    // (command, data kind, recipe key, --out): stage commands and the data each reads.
    (string Command, string Kind, string Key, bool Fresh)[] Readers =>
    [
        ("sft", "demo", "sft_data", true), ("rm", "pref", "rm_data", true), ("dpo", "pref", "dpo_data", false),
        ("kto", "label", "dpo_data", false), ("ppo", "prompt", "ppo_prompts", false), ("grpo", "prompt", "ppo_prompts", false),
    ];

    public List<BadInput> Build()
    {
        DataDefects();
        FileDefects();
        RecipeDefects();
        SettingDefects();
        ModelDefects();
        StateDefects();
        CommandLineDefects();
        HardeningDefects();
        return cases;
    }

    void DataDefects()
    {
        var lineDefects = new (string Name, Func<string, byte[]> Line, string Mention)[]
        {
            ("truncated-json", k => Bytes(Good[k][..(Good[k].Length / 2)]), ":3"),
            ("array-line", _ => Bytes("[1, 2, 3]"), ":3"),
            ("number-line", _ => Bytes("42"), ":3"),
            ("string-line", _ => Bytes("\"just text\""), ":3"),
            ("null-line", _ => Bytes("null"), ":3"),
            ("empty-object", _ => Bytes("{}"), ":3"),
            ("prompt-number", k => Bytes(Good[k].Replace("\"Tell a story.\"", "5")), ":3"),
            ("prompt-null", k => Bytes(Good[k].Replace("\"Tell a story.\"", "null")), ":3"),
            ("prompt-object", k => Bytes(Good[k].Replace("\"Tell a story.\"", "{\"text\": \"hi\"}")), ":3"),
            ("prompt-array", k => Bytes(Good[k].Replace("\"Tell a story.\"", "[\"a\", \"b\"]")), ":3"),
            ("invalid-utf8", k => [.. Bytes(Good[k][..12]), 0xFF, 0xFE, 0xC3, .. Bytes(Good[k][12..])], ":3"),
            ("nul-bytes", _ => [0, 0, 0, 0], ":3"),
            ("trailing-garbage", k => Bytes(Good[k] + " xyz"), ":3"),
            ("missing-prompt", k => Bytes(Good[k].Replace("\"prompt\"", "\"promt\"")), ":3"),
        };
        foreach (var (command, kind, key, isFresh) in Readers)
            foreach (var (name, line, mention) in lineDefects)
            {
                if (kind == "prompt" && name == "empty-object" && command == "grpo") continue; // same path as ppo
                if (kind == "pref" && name == "missing-prompt") continue; // chosen/rejected without a prompt is HH's own format, and extra fields are allowed
                string file = Write($"{command}-{name}.jsonl", [Bytes(Good[kind]), Bytes(Good[kind]), line(kind)]);
                Stage($"{command}/{name}", command, new JsonObject { [key] = file }, isFresh, [Path.GetFileName(file) + mention]);
            }

        // Defects that only make sense for some kinds.
        var specific = new (string Command, string Kind, string Key, bool Fresh, string Name, string Line)[]
        {
            ("sft", "demo", "sft_data", true, "completion-number", """{"prompt": "a", "completion": 7}"""),
            ("sft", "demo", "sft_data", true, "completion-bool", """{"prompt": "a", "completion": true}"""),
            ("sft", "demo", "sft_data", true, "messages-not-array", """{"messages": "hello"}"""),
            ("sft", "demo", "sft_data", true, "messages-bad-role", """{"messages": [{"role": "wizard", "content": "hi"}]}"""),
            ("sft", "demo", "sft_data", true, "messages-content-number", """{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}"""),
            ("sft", "demo", "sft_data", true, "messages-empty", """{"messages": []}"""),
            ("rm", "pref", "rm_data", true, "rejected-number", """{"prompt": "a", "chosen": "b", "rejected": 3}"""),
            ("rm", "pref", "rm_data", true, "chosen-missing", """{"prompt": "a", "rejected": "b"}"""),
            ("rm", "pref", "rm_data", true, "ranking-out-of-range", """{"prompt": "a", "responses": ["x", "y", "z"], "ranking": [0, 1, 7]}"""),
            ("rm", "pref", "rm_data", true, "ranking-repeated", """{"prompt": "a", "responses": ["x", "y", "z"], "ranking": [0, 0, 1]}"""),
            ("rm", "pref", "rm_data", true, "ranking-short", """{"prompt": "a", "responses": ["x", "y", "z"], "ranking": [0, 1]}"""),
            ("rm", "pref", "rm_data", true, "one-response", """{"prompt": "a", "responses": ["x"], "ranking": [0]}"""),
            ("rm", "pref", "rm_data", true, "responses-not-array", """{"prompt": "a", "responses": "x", "ranking": [0]}"""),
            ("kto", "label", "dpo_data", false, "label-string", """{"prompt": "a", "completion": "b", "label": "yes"}"""),
            ("kto", "label", "dpo_data", false, "label-number", """{"prompt": "a", "completion": "b", "label": 2}"""),
            ("dpo", "pref", "dpo_data", false, "chosen-array", """{"prompt": "a", "chosen": ["b"], "rejected": "c"}"""),
        };
        foreach (var (command, kind, key, isFresh, name, line) in specific)
        {
            string file = Write($"{command}-{name}.jsonl", [Bytes(Good[kind]), Bytes(Good[kind]), Bytes(line)]);
            Stage($"{command}/{name}", command, new JsonObject { [key] = file }, isFresh, [Path.GetFileName(file) + ":3"]);
        }

        // Empty and huge strings where they cannot work.
        string emptyCompletions = Write("sft-empty-completions.jsonl", Enumerable.Repeat(Bytes("""{"prompt": "a", "completion": ""}"""), 4).ToArray());
        Stage("sft/empty-completions", "sft", new JsonObject { ["sft_data"] = emptyCompletions }, true, ["sft-empty-completions.jsonl", "completion"]);
        string emptyPrompts = Write("ppo-empty-prompts.jsonl", Enumerable.Repeat(Bytes("""{"prompt": ""}"""), 4).ToArray());
        Stage("ppo/empty-prompts", "ppo", new JsonObject { ["ppo_prompts"] = emptyPrompts }, false, ["ppo-empty-prompts.jsonl", "prompt"]);
        string hugeLine = Write("sft-huge-line.jsonl", [Bytes(Good["demo"]), Bytes("{\"prompt\": \"" + new string('a', 70 << 20))]);
        Stage("sft/huge-unterminated-string", "sft", new JsonObject { ["sft_data"] = hugeLine }, true, ["sft-huge-line.jsonl:2"]);
        Stage("sft/huge-max-length", "sft", new JsonObject { ["sft_data"] = Write("ok-demos.jsonl", [Bytes(Good["demo"]), Bytes(Good["demo"])]), ["sft"] = new JsonObject { ["max_length"] = 0 } }, true, ["max_length"]);
    }

    void FileDefects()
    {
        foreach (var (command, kind, key, isFresh) in Readers.Where(r => r.Command is "sft" or "rm" or "ppo"))
        {
            string empty = Write($"{command}-empty.jsonl", []);
            Stage($"{command}/empty-file", command, new JsonObject { [key] = empty }, isFresh, [Path.GetFileName(empty)]);
            string blank = Path.Combine(dir, $"{command}-blank.jsonl");
            File.WriteAllText(blank, "\n\n   \n");
            Stage($"{command}/blank-lines", command, new JsonObject { [key] = blank }, isFresh, [Path.GetFileName(blank)]);
            string gz = Path.Combine(dir, $"{command}-garbage.jsonl.gz");
            File.WriteAllBytes(gz, Bytes("this is not gzip at all"));
            Stage($"{command}/not-gzip", command, new JsonObject { [key] = gz }, isFresh, [Path.GetFileName(gz)]);
            string cut = Path.Combine(dir, $"{command}-cut.jsonl.gz");
            File.WriteAllBytes(cut, Gzip(string.Join("\n", Enumerable.Repeat(Good[kind], 200)))[..60]);
            Stage($"{command}/truncated-gzip", command, new JsonObject { [key] = cut }, isFresh, [Path.GetFileName(cut)]);
            string csv = Path.Combine(dir, $"{command}-quote.csv");
            File.WriteAllText(csv, "prompt,completion,chosen,rejected\n\"unclosed,b,c,d\n");
            Stage($"{command}/csv-unclosed-quote", command, new JsonObject { [key] = csv }, isFresh, [Path.GetFileName(csv)]);
            string parquet = Path.Combine(dir, $"{command}-bad.parquet");
            File.WriteAllBytes(parquet, Bytes("PAR1 garbage garbage PAR1"));
            Stage($"{command}/parquet-garbage", command, new JsonObject { [key] = parquet }, isFresh, [Path.GetFileName(parquet)]);
            string json = Path.Combine(dir, $"{command}-array.json");
            File.WriteAllText(json, $"[{Good[kind]}, {Good[kind][..10]}");
            Stage($"{command}/json-array-cut", command, new JsonObject { [key] = json }, isFresh, [Path.GetFileName(json)]);
            Stage($"{command}/missing-file", command, new JsonObject { [key] = Path.Combine(dir, "no-such-file.jsonl") }, isFresh, ["no-such-file.jsonl"]);
            Stage($"{command}/folder-not-file", command, new JsonObject { [key] = dir }, isFresh, [Path.GetFileName(dir)]);
            string unknown = Path.Combine(dir, $"{command}.xlsx");
            File.WriteAllText(unknown, "x");
            Stage($"{command}/unknown-extension", command, new JsonObject { [key] = unknown }, isFresh, [Path.GetFileName(unknown)]);
        }
    }

    void RecipeDefects()
    {
        string data = Write("recipe-demos.jsonl", [Bytes(Good["demo"]), Bytes(Good["demo"])]);
        var texts = new (string Name, string Text, string Mention)[]
        {
            ("unknown-key", $$$"""{"nme": "x", "sft_data": "{{{data}}}"}""", "nme"),
            ("unknown-nested-key", $$$"""{"sft_data": "{{{data}}}", "sft": {"epoch": 1}}""", "sft.epoch"),
            ("unknown-deep-key", $$$$"""{"sft_data": "{{{{data}}}}", "sft": {"optimizer": {"lr": 1}}}""", "sft.optimizer.lr"),
            ("epochs-string", $$$"""{"sft_data": "{{{data}}}", "sft": {"epochs": "three"}}""", "sft.epochs"),
            ("epochs-fraction", $$$"""{"sft_data": "{{{data}}}", "sft": {"epochs": 1.5}}""", "sft.epochs"),
            ("epochs-huge", $$$"""{"sft_data": "{{{data}}}", "sft": {"epochs": 99999999999999999999}}""", "sft.epochs"),
            ("section-not-object", $$$"""{"sft_data": "{{{data}}}", "sft": 5}""", "sft"),
            ("enum-unknown", $$$"""{"sft_data": "{{{data}}}", "ppo": {"critic": "psychic"}}""", "ppo.critic"),
            ("schedule-unknown", $$$$"""{"sft_data": "{{{{data}}}}", "sft": {"optimizer": {"schedule": "zigzag"}}}""", "sft.optimizer.schedule"),
            ("bool-as-string", $$$"""{"sft_data": "{{{data}}}", "skip_invalid": "maybe"}""", "skip_invalid"),
            ("invalid-json", """{"name": "x", """, "line"),
            ("array-not-object", """[1, 2]""", "JSON object"),
            ("empty-file", "", "recipe"),
            ("data-path-number", """{"sft_data": 5}""", "sft_data"),
        };
        foreach (var (name, text, mention) in texts)
        {
            string file = Path.Combine(dir, $"recipe-{name}.json");
            File.WriteAllText(file, text);
            Add($"recipe/{name}", ["sft", "--recipe", file], [mention], fresh: true);
        }
        string utf8 = Path.Combine(dir, "recipe-invalid-utf8.json");
        File.WriteAllBytes(utf8, [.. Bytes("{\"name\": \""), 0xFF, 0xFE, .. Bytes("\"}")]);
        Add("recipe/invalid-utf8", ["sft", "--recipe", utf8], ["recipe-invalid-utf8.json"], fresh: true);
        Add("recipe/missing-file", ["sft", "--recipe", Path.Combine(dir, "nope.json")], ["nope.json"], fresh: true);
        Add("recipe/no-data-key", ["sft", "--recipe", Write("recipe-nodata.json", [Bytes("{\"name\": \"x\"}")])], ["sft_data"], fresh: true);
        Add("set/no-equals", ["sft", "--recipe", Path.Combine(dir, "recipe-nodata.json"), "--set", "sft.epochs"], ["sft.epochs", "key=value"], fresh: true);
        Add("set/into-scalar", ["sft", "--recipe", Path.Combine(dir, "recipe-nodata.json"), "--set", "sft.epochs.x=1"], ["sft.epochs"], fresh: true);
        Add("set/into-existing-scalar", ["sft", "--recipe", Path.Combine(dir, "recipe-nodata.json"), "--set", "name.x=1"], ["'name' is not a section"], fresh: true);
        Add("set/unknown-key", ["sft", "--recipe", Path.Combine(dir, "recipe-nodata.json"), "--set", "sft.warp=9"], ["sft.warp"], fresh: true);
        Add("set/empty-key", ["sft", "--recipe", Path.Combine(dir, "recipe-nodata.json"), "--set", "=3"], ["key=value"], fresh: true);
    }

    /// <summary>Values of the right type outside their range: each must be refused up front, not hang or divide by zero.</summary>
    void SettingDefects()
    {
        string demos = Write("setting-demos.jsonl", Enumerable.Repeat(Bytes(Good["demo"]), 8).ToArray());
        string prefs = Write("setting-prefs.jsonl", Enumerable.Repeat(Bytes(Good["pref"]), 8).ToArray());
        string prompts = Write("setting-prompts.jsonl", Enumerable.Repeat(Bytes(Good["prompt"]), 8).ToArray());
        var settings = new (string Command, string Set, string Mention)[]
        {
            ("sft", "sft.batch_size=0", "sft.batch_size"), ("sft", "sft.epochs=0", "sft.epochs"), ("sft", "sft.max_length=-5", "sft.max_length"),
            ("sft", "sft.optimizer.learning_rate=-1", "sft.optimizer.learning_rate"), ("sft", "sft.optimizer.gradient_accumulation=0", "sft.optimizer.gradient_accumulation"),
            ("sft", "sft.optimizer.learning_rate=NaN", "sft.optimizer.learning_rate"), ("sft", "sft.save_every=-1", "sft.save_every"),
            ("sft", "sft.keep_last=0", "sft.keep_last"), ("sft", "max_records=-1", "max_records"),
            ("rm", "rm.prompts_per_batch=0", "rm.prompts_per_batch"), ("rm", "rm.epochs=-1", "rm.epochs"),
            ("ppo", "ppo.mini_batch_size=0", "ppo.mini_batch_size"), ("ppo", "ppo.rollout_batch_size=0", "ppo.rollout_batch_size"),
            ("ppo", "ppo.steps=-3", "ppo.steps"), ("ppo", "ppo.max_new_tokens=0", "ppo.max_new_tokens"), ("ppo", "ppo.ppo_epochs=0", "ppo.ppo_epochs"),
            ("ppo", "ppo.temperature=-1", "ppo.temperature"), ("ppo", "ppo.top_p=2", "ppo.top_p"), ("ppo", "ppo.kl_horizon=0", "ppo.kl_horizon"),
            ("ppo", "max_prompt_tokens=0", "max_prompt_tokens"),
            ("dpo", "dpo.batch_size=0", "dpo.batch_size"), ("dpo", "dpo.beta=-1", "dpo.beta"),
            ("grpo", "grpo.group_size=0", "grpo.group_size"), ("grpo", "grpo.steps=0", "grpo.steps"),
        };
        foreach (var (command, set, mention) in settings)
        {
            bool isFresh = command is "sft" or "rm";
            var recipe = new JsonObject { ["sft_data"] = demos, ["rm_data"] = prefs, ["dpo_data"] = prefs, ["ppo_prompts"] = prompts };
            string file = RecipeFile($"setting-{command}-{set.Split('=')[0]}", recipe);
            Add($"setting/{set}", [command, "--recipe", file, "--set", set, .. OutArgs(isFresh, out var freshDir)], [mention], freshDir);
        }
    }

    void ModelDefects()
    {
        var variants = new (string Name, Action<string> Break, string Mention)[]
        {
            ("config-broken-json", m => File.WriteAllText(Path.Combine(m, "config.json"), "{\"vocab_size\": 512,"), "config.json"),
            ("config-missing-hidden", m => EditConfig(m, c => c.Remove("hidden_size")), "hidden_size"),
            ("config-unknown-type", m => EditConfig(m, c => { c["model_type"] = "bert"; c["architectures"] = new JsonArray("BertModel"); }), "bert"),
            ("config-zero-heads", m => EditConfig(m, c => c["num_attention_heads"] = 0), "num_attention_heads"),
            ("config-heads-not-dividing", m => EditConfig(m, c => c["num_attention_heads"] = 7), "num_attention_heads"),
            ("config-negative-vocab", m => EditConfig(m, c => c["vocab_size"] = -1), "vocab_size"),
            ("config-vocab-smaller-than-weights", m => EditConfig(m, c => c["vocab_size"] = 300), "model.embed_tokens.weight"),
            ("weights-missing", m => File.Delete(Path.Combine(m, "model.safetensors")), "safetensors"),
            ("weights-truncated", m => Truncate(Path.Combine(m, "model.safetensors"), 5000), "model.safetensors"),
            ("weights-header-garbage", m => File.WriteAllBytes(Path.Combine(m, "model.safetensors"), [16, 0, 0, 0, 0, 0, 0, 0, .. Bytes("not json at all!")]), "model.safetensors"),
            ("weights-huge-header-length", m => File.WriteAllBytes(Path.Combine(m, "model.safetensors"), [255, 255, 255, 255, 255, 255, 0, 0, .. Bytes("{}")]), "model.safetensors"),
            ("weights-wrong-shape", m => ReshapeEmbedding(m), "model.embed_tokens.weight"),
            ("tokenizer-broken-json", m => File.WriteAllText(Path.Combine(m, "tokenizer.json"), "{\"model\": "), "tokenizer.json"),
            ("tokenizer-missing", m => { File.Delete(Path.Combine(m, "tokenizer.json")); File.Delete(Path.Combine(m, "tokenizer_config.json")); }, "tokenizer"),
            ("tokenizer-too-big", m => GrowTokenizer(m), "vocab_size"),
            ("empty-folder", m => { foreach (var f in Directory.GetFiles(m)) File.Delete(f); }, "config.json"),
        };
        foreach (var (name, breakIt, mention) in variants)
        {
            string m = Path.Combine(dir, $"model-{name}");
            CopyFolder(modelDir, m);
            breakIt(m);
            Add($"model/{name}/generate", ["generate", "--model", m, "--prompt", "Once", "--max-new-tokens", "4"], [mention]);
            if (cases.Count % 2 == 0)
                Add($"model/{name}/sft", ["sft", "--recipe", RecipeFile($"model-{name}", new JsonObject { ["model"] = m, ["sft_data"] = Write("model-demos.jsonl", [Bytes(Good["demo"]), Bytes(Good["demo"])]) }),
                    .. OutArgs(true, out var freshDir)], [mention], freshDir);
        }
        string bin = Path.Combine(dir, "truncated.bin");
        File.WriteAllBytes(bin, File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "models", "stories260K", "stories260K.bin"))[..1000]);
        Add("model/llama2c-truncated", ["generate", "--model", bin, "--prompt", "Once"], ["truncated.bin"]);
        Add("model/missing", ["generate", "--model", Path.Combine(dir, "no-model"), "--prompt", "Once"], ["no-model"]);
        Add("model/unknown-builtin", ["generate", "--model", "stories999k", "--prompt", "Once"], ["stories999k"]);
    }

    /// <summary>A stopped run's resume state from another model: wrong shapes, a missing tensor, a broken optimizer file.</summary>
    void StateDefects()
    {
        var variants = new (string Name, Action<string> Break, string Mention)[]
        {
            ("state-wrong-shape", s => RewriteState(s, w => w["model.norm.weight"] = TorchSharp.torch.ones(7)), "model.norm.weight"),
            ("state-missing-tensor", s => RewriteState(s, w => w.Remove("model.norm.weight")), "model.norm.weight"),
            ("state-optimizer-garbage", s => RewriteFile(s, "policy.optimizer.bin", Bytes("garbage, not an optimizer")), "policy.optimizer.bin"),
        };
        foreach (var (name, breakIt, mention) in variants)
        {
            string copy = Path.Combine(dir, $"stopped-{name}");
            CopyFolder(stoppedRun, copy);
            var state = new RlhfSharp.Training.StageState(Path.Combine(copy, "sft"));
            breakIt(Directory.GetDirectories(state.StateDir, "step-*").Max()!);
            Add($"state/{name}", ["sft", "--recipe", Path.Combine(stoppedRun, "..", "stopped-recipe.json"), "--out", copy, "--resume"], [mention]);
        }
    }

    void CommandLineDefects()
    {
        string prompts = Write("cli-prompts.jsonl", [Bytes(Good["prompt"]), Bytes("{\"prompt\": 5}")]);
        var lines = new (string Name, string[] Args, string Mention)[]
        {
            ("generate/negative-tokens", ["generate", "--prompt", "a", "--max-new-tokens", "-1"], "max_new_tokens"),
            ("generate/negative-temperature", ["generate", "--prompt", "a", "--temperature", "-1"], "temperature"),
            ("generate/top-k-negative", ["generate", "--prompt", "a", "--top-k", "-5"], "top_k"),
            ("generate/empty-prompt-ids", ["generate", "--prompt-ids", ""], "prompt-ids"),
            ("generate/huge-prompt-id", ["generate", "--prompt-ids", "1," + new string('9', 40)], "999"),
            ("generate/seed-not-number", ["generate", "--prompt", "a", "--seed", "x"], "x"),
            ("generate/prompts-file-bad-record", ["generate", "--prompts", prompts, "--max-new-tokens", "2"], "cli-prompts.jsonl:2"),
            ("generate/repetition-penalty-zero", ["generate", "--prompt", "a", "--repetition-penalty", "0"], "repetition"),
            ("eval/bad-reward", ["eval", "--data", Write("eval-prompts.jsonl", [Bytes(Good["prompt"])]), "--reward", "telepathy", "--out", Path.Combine(dir, "eval-out")], "telepathy"),
            ("eval/data-bad-record", ["eval", "--data", prompts, "--out", Path.Combine(dir, "eval-out2")], "cli-prompts.jsonl:2"),
            ("eval/rm-missing", ["eval", "--data", Write("eval-prompts2.jsonl", [Bytes(Good["prompt"])]), "--reward", "rm:" + Path.Combine(dir, "no-rm"), "--out", Path.Combine(dir, "eval-out3")], "no-rm"),
            ("convert/missing-model", ["convert", "--model", Path.Combine(dir, "ghost"), "--out", Path.Combine(dir, "conv")], "ghost"),
            ("chat/unknown-template", ["chat", "--chat-template", "klingon"], "klingon"),
            ("pipeline/unknown-key", ["pipeline", "--set", "ppo.warp=1", "--out", Path.Combine(dir, "pipe")], "ppo.warp"),
            ("pipeline/existing-run", ["pipeline", "--out", run], run),
            ("sft/already-done", ["sft", "--recipe", RecipeFile("done", new JsonObject { ["sft_data"] = Write("done-demos.jsonl", [Bytes(Good["demo"])]) }), "--out", run], "already done"),
            ("ppo/no-reward-model", ["ppo", "--recipe", RecipeFile("norm", new JsonObject { ["ppo_prompts"] = prompts }), "--out", Path.Combine(dir, "no-rm-run")], "rm"),
        };
        foreach (var (name, args, mention) in lines) Add(name, args, [mention]);
    }

    // ---- writing the pieces

    void Stage(string name, string command, JsonObject recipe, bool isFresh, string[] mentions)
    {
        string file = RecipeFile(name.Replace('/', '-'), recipe);
        Add(name, [command, "--recipe", file, .. OutArgs(isFresh, out var freshDir)], mentions, freshDir);
    }

    string[] OutArgs(bool isFresh, out string? freshDir)
    {
        freshDir = isFresh ? Path.Combine(dir, "fresh", $"out-{fresh++}") : null;
        return ["--out", freshDir ?? run];
    }

    void Add(string name, string[] args, string[] mentions, string? freshDir = null) => cases.Add(new BadInput(name, args, mentions) { FreshOut = freshDir });
    void Add(string name, string[] args, string[] mentions, bool fresh) { OutArgs(true, out var freshDir); Add(name, [.. args, "--out", freshDir!], mentions, freshDir); }

    /// <summary>A recipe with tiny stages on stories260K plus <paramref name="overrides"/>.</summary>
    string RecipeFile(string name, JsonObject overrides)
    {
        var recipe = new JsonObject
        {
            ["name"] = "fuzz", ["model"] = "stories260k", ["max_prompt_tokens"] = 32,
            ["sft"] = new JsonObject { ["epochs"] = 1, ["batch_size"] = 2, ["max_length"] = 64 },
            ["rm"] = new JsonObject { ["epochs"] = 1, ["prompts_per_batch"] = 2, ["max_length"] = 64 },
            ["dpo"] = new JsonObject { ["epochs"] = 1, ["batch_size"] = 2, ["max_length"] = 64 },
            ["ppo"] = new JsonObject { ["steps"] = 1, ["rollout_batch_size"] = 2, ["mini_batch_size"] = 2, ["max_new_tokens"] = 4 },
            ["grpo"] = new JsonObject { ["steps"] = 1, ["prompts_per_step"] = 1, ["group_size"] = 2, ["max_new_tokens"] = 4 },
        };
        foreach (var (k, v) in overrides)
            if (v is JsonObject section && recipe[k] is JsonObject existing) foreach (var (sk, sv) in section) existing[sk] = sv?.DeepClone();
            else recipe[k] = v?.DeepClone();
        string path = Path.Combine(dir, $"recipe-{name}.json");
        File.WriteAllText(path, recipe.ToJsonString());
        return path;
    }

    string Write(string name, byte[][] lines)
    {
        string path = Path.Combine(dir, name);
        using var f = File.Create(path);
        foreach (var line in lines) { f.Write(line); f.WriteByte((byte)'\n'); }
        return path;
    }

    static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    static byte[] Gzip(string text)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal)) gz.Write(Bytes(text));
        return ms.ToArray();
    }

    static void EditConfig(string model, Action<JsonObject> edit)
    {
        string path = Path.Combine(model, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    static void Truncate(string path, int bytes) => File.WriteAllBytes(path, File.ReadAllBytes(path)[..bytes]);

    static void ReshapeEmbedding(string model)
    {
        string path = Path.Combine(model, "model.safetensors");
        var weights = RlhfSharp.Checkpoints.SafeTensors.Load(path);
        weights["model.embed_tokens.weight"] = weights["model.embed_tokens.weight"].narrow(1, 0, 32).contiguous();
        RlhfSharp.Checkpoints.SafeTensors.Save(path, weights.OrderBy(kv => kv.Key, StringComparer.Ordinal));
    }

    static void GrowTokenizer(string model)
    {
        string path = Path.Combine(model, "tokenizer.json");
        var tok = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var vocab = tok["model"]!["vocab"]!.AsObject();
        for (int i = 0; i < 100; i++) vocab[$"<extra_{i}>"] = 512 + i;
        File.WriteAllText(path, tok.ToJsonString());
    }

    /// <summary>Rewrites a state file and its recorded size, so the checkpoint still looks whole and only its content is wrong.</summary>
    static void RewriteFile(string stepDir, string file, byte[] content)
    {
        File.WriteAllBytes(Path.Combine(stepDir, file), content);
        string progress = Path.Combine(stepDir, "progress.json");
        var p = JsonNode.Parse(File.ReadAllText(progress))!.AsObject();
        p["files"]![file] = content.Length;
        File.WriteAllText(progress, p.ToJsonString());
    }

    static void RewriteState(string stepDir, Action<Dictionary<string, TorchSharp.torch.Tensor>> edit)
    {
        string path = Path.Combine(stepDir, "policy.safetensors");
        var weights = RlhfSharp.Checkpoints.SafeTensors.Load(path);
        edit(weights);
        string tmp = path + ".new";
        RlhfSharp.Checkpoints.SafeTensors.Save(tmp, weights.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        RewriteFile(stepDir, "policy.safetensors", File.ReadAllBytes(tmp));
        File.Delete(tmp);
    }

    static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
