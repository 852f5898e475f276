using System.Text;
using System.Text.Json.Nodes;

namespace RlhfSharp.Tests.Resilience;

internal sealed partial class BadInputCases
{
    /// <summary>
    /// Issue #16 §2 and §4, one case or more per class: duplicate keys and lone surrogates in data and recipes, null
    /// sections, a BOM, the pipeline's range checks, token ids that are not ids, an --out that is a file, run folders
    /// that are not ours or do not exist, a resume with another recipe, a start that fails after validation, an export
    /// into a missing folder. All of them run in the short version of the fuzz test (<see cref="BadInput.Always"/>).
    /// </summary>
    void HardeningDefects()
    {
        // Data records: duplicate keys and a lone surrogate escape, in JSON Lines and in a JSON array.
        var records = new (string Name, string Line, string Mention)[]
        {
            ("data-duplicate-key", """{"prompt": "a", "completion": "b", "prompt": "c"}""", "duplicate key 'prompt'"),
            ("data-duplicate-nested-key", """{"messages": [{"role": "user", "content": "a", "content": "b"}, {"role": "assistant", "content": "c"}]}""", "messages[0].content"),
            ("data-lone-surrogate", """{"prompt": "a\ud800b", "completion": "c"}""", "surrogate"),
            ("data-lone-low-surrogate-in-key", """{"prompt": "a", "completion": "c", "x\udc00": 1}""", "surrogate"),
        };
        foreach (var (name, line, mention) in records)
        {
            string file = Write($"hardening-{name}.jsonl", [Bytes(Good["demo"]), Bytes(Good["demo"]), Bytes(line)]);
            Stage($"hardening/{name}", "sft", new JsonObject { ["sft_data"] = file }, true, [Path.GetFileName(file) + ":3", mention]);
        }
        string array = Path.Combine(dir, "hardening-array-duplicate.json");
        File.WriteAllText(array, $"[{Good["demo"]},\n{Good["demo"]},\n" + """{"prompt": "a", "completion": "b", "completion": "c"}""" + "]");
        Stage("hardening/data-json-array-duplicate-key", "sft", new JsonObject { ["sft_data"] = array }, true, ["hardening-array-duplicate.json:3", "completion"]);

        // Recipes: a duplicate key (its path), a null section, a null string, a BOM (read, so the real error shows).
        string data = Write("hardening-recipe-demos.jsonl", [Bytes(Good["demo"]), Bytes(Good["demo"])]);
        var texts = new (string Name, string Text, string Mention)[]
        {
            ("recipe-duplicate-key", $$$"""{"sft_data": "{{{data}}}", "name": "a", "name": "b"}""", "duplicate key 'name'"),
            ("recipe-duplicate-nested-key", $$$$"""{"sft_data": "{{{{data}}}}", "sft": {"optimizer": {"learning_rate": 1e-3, "learning_rate": 1}}}""", "sft.optimizer.learning_rate"),
            ("recipe-null-section", $$$"""{"sft_data": "{{{data}}}", "sft": null}""", "sft must not be null"),
            ("recipe-null-nested-section", $$$"""{"sft_data": "{{{data}}}", "sft": {"optimizer": null}}""", "sft.optimizer must not be null"),
            ("recipe-null-name", $$$"""{"sft_data": "{{{data}}}", "name": null}""", "name must not be null"),
            ("recipe-bom-then-unknown-key", "\uFEFF" + $$$"""{"sft_data": "{{{data}}}", "nme": "x"}""", "nme"),
        };
        foreach (var (name, text, mention) in texts)
        {
            string file = Path.Combine(dir, $"hardening-{name}.json");
            File.WriteAllText(file, text, new UTF8Encoding(false));
            Add($"hardening/{name}", ["sft", "--recipe", file], [mention], fresh: true);
        }
        string pipelineRecipe = Path.Combine(dir, "hardening-pipeline-null.json");
        File.WriteAllText(pipelineRecipe, """{"prompts": null}""");
        Add("hardening/pipeline-null-section", ["pipeline", "--recipe", pipelineRecipe], ["prompts must not be null"], fresh: true);
        Add("hardening/pipeline-set-null-section", ["pipeline", "--set", "feedback=null"], ["feedback must not be null"], fresh: true);

        // The pipeline's own sections had no range checks; PPO's EMA β and KL target were unchecked.
        foreach (var set in new[] { "prompts.eval=0", "prompts.train=-5", "feedback.k=1", "feedback.max_new_tokens=0", "eval.best_of_n=0",
                     "feedback.demonstration_prompts=0", "feedback.target_agreement=1", "eval.temperature=-1", "ppo.ema_beta=2", "ppo.kl_target=-1" })
            Add($"hardening/pipeline-{set}", ["pipeline", "--set", set], [set.Split('=')[0]], fresh: true);
        Add("hardening/ppo-stage-ema-beta", ["ppo", "--recipe", RecipeFile("hardening-ema", new JsonObject { ["ppo_prompts"] = data }), "--set", "ppo.ema_beta=-0.5", .. OutArgs(true, out var emaOut)],
            ["ppo.ema_beta"], emaOut);

        // tokenizer.json ids that are not token ids.
        var tokenizers = new (string Name, Action<JsonObject> Break, string Mention)[]
        {
            ("tokenizer-string-id", t => t["model"]!["vocab"]!.AsObject()[FirstVocabKey(t)] = "seven", "model.vocab"),
            ("tokenizer-negative-id", t => t["model"]!["vocab"]!.AsObject()[FirstVocabKey(t)] = -3, "model.vocab"),
            ("tokenizer-fraction-id", t => t["model"]!["vocab"]!.AsObject()[FirstVocabKey(t)] = 2.5, "model.vocab"),
            ("tokenizer-added-string-id", t => t["added_tokens"] = new JsonArray(new JsonObject { ["id"] = "x", ["content"] = "<x>", ["special"] = true }), "added_tokens[0].id"),
        };
        foreach (var (name, breakIt, mention) in tokenizers)
        {
            string m = Path.Combine(dir, $"hardening-model-{name}");
            CopyFolder(modelDir, m);
            string path = Path.Combine(m, "tokenizer.json");
            var tok = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            breakIt(tok);
            File.WriteAllText(path, tok.ToJsonString());
            Add($"hardening/{name}", ["generate", "--model", m, "--prompt", "Once", "--max-new-tokens", "2"], ["tokenizer.json", mention]);
        }

        // --out names a file: the message says so, not "the disk may be full".
        string aFile = Path.Combine(dir, "hardening-a-file.txt");
        File.WriteAllText(aFile, "mine");
        string[] notFull = ["disk may be full"];
        string okRecipe = RecipeFile("hardening-out-file", new JsonObject { ["sft_data"] = data });
        cases.Add(new BadInput("hardening/out-is-a-file-sft", ["sft", "--recipe", okRecipe, "--out", aFile], ["hardening-a-file.txt", "is a file"]) { Forbidden = notFull });
        cases.Add(new BadInput("hardening/out-under-a-file-sft", ["sft", "--recipe", okRecipe, "--out", Path.Combine(aFile, "run")], ["hardening-a-file.txt", "is a file"]) { Forbidden = notFull });
        cases.Add(new BadInput("hardening/out-is-a-file-pipeline", ["pipeline", "--out", aFile], ["hardening-a-file.txt", "is a file"]) { Forbidden = notFull });

        // Run folders: --resume where there is none, a folder that is not a run (an HF model, a user's folder), another recipe.
        string missing = Path.Combine(dir, "fresh", "never-made");
        cases.Add(new BadInput("hardening/pipeline-resume-missing-folder", ["pipeline", "--out", missing, "--resume"], ["never-made", "does not exist"]) { FreshOut = missing });
        cases.Add(new BadInput("hardening/pipeline-resume-into-model-folder", ["pipeline", "--out", modelDir, "--resume"], ["config.json", "not written by rlhf pipeline"]));
        cases.Add(new BadInput("hardening/pipeline-into-model-folder", ["pipeline", "--out", modelDir], ["config.json", "not written by rlhf pipeline"]));
        string notRun = Path.Combine(dir, "hardening-user-folder");
        Directory.CreateDirectory(notRun);
        File.WriteAllText(Path.Combine(notRun, "notes.txt"), "mine");
        cases.Add(new BadInput("hardening/pipeline-resume-into-user-folder", ["pipeline", "--out", notRun, "--resume"], ["hardening-user-folder", "not a run folder"]));
        string stoppedPipeline = Path.Combine(dir, "hardening-pipeline-run");
        Directory.CreateDirectory(stoppedPipeline);
        File.WriteAllText(Path.Combine(stoppedPipeline, "config.json"), RlhfSharp.Recipes.Recipe.Serialize(new RlhfSharp.Pipeline.PipelineConfig()));
        cases.Add(new BadInput("hardening/pipeline-resume-changed-key", ["pipeline", "--out", stoppedPipeline, "--resume", "--set", "ppo.actor_optimizer.learning_rate=0.1"],
            ["ppo.actor_optimizer.learning_rate", "different"]));
        cases.Add(new BadInput("hardening/pipeline-resume-changed-name", ["pipeline", "--out", stoppedPipeline, "--resume", "--set", "name=other"], ["'name'"]));
        // A start that fails once validated (the model cannot be loaded) leaves no folder behind.
        Add("hardening/pipeline-failed-start", ["pipeline", "--set", "model=" + Path.Combine(dir, "no-such-model")], ["no-such-model"], fresh: true);

        // An export into a folder that does not exist names that folder, not its temporary file.
        string db = Path.Combine(dir, "hardening-labels.db");
        RlhfSharp.Labeling.LabelStore.Open(db);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        string exportDir = Path.Combine(dir, "no-export-folder");
        cases.Add(new BadInput("hardening/label-export-missing-folder", ["label", "export", "--db", db, "--format", "pairwise", "--out", Path.Combine(exportDir, "labels.jsonl")],
            ["no-export-folder", "does not exist"]) { FreshOut = exportDir, Forbidden = [".tmp-"] });
    }

    static string FirstVocabKey(JsonObject tokenizer) => tokenizer["model"]!["vocab"]!.AsObject().First().Key;
}
