using System.CommandLine;
using RlhfSharp.Checkpoints;
using RlhfSharp.Lora;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Cli.Commands;

/// <summary><c>rlhf lora merge</c>: fold a PEFT LoRA adapter into its base and write a full Hugging Face checkpoint.</summary>
public static class LoraCommand
{
    static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt"];

    public static Command Create()
    {
        var adapter = new Option<string>("--adapter", "-a") { Description = "PEFT adapter folder (adapter_config.json + adapter_model.safetensors).", Required = true };
        var baseModel = new Option<string?>("--base", "-b") { Description = "Base model the adapter was trained on (HF folder, llama2.c .bin or built-in name); default: the adapter's base_model_name_or_path." };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write (config.json, model.safetensors, tokenizer files).", Required = true };
        var bf16 = new Option<bool>("--bf16") { Description = "Store weights as BF16 instead of F32." };
        var merge = new Command("merge", "Merge a LoRA adapter into its base model: W + (alpha/r)·B·A, written as a full HF checkpoint.") { adapter, baseModel, output, bf16 };
        merge.SetAction(r => Program.Run(() =>
        {
            string dir = r.GetValue(adapter)!, outDir = r.GetValue(output)!;
            var info = PeftAdapter.ReadInfo(dir);
            string? given = r.GetValue(baseModel) is { } b ? PretrainedModel.Resolve(b) : null;
            string basePath = PeftAdapter.ResolveBase(dir, given);
            bool ownTokenizer = TokenizerFiles.Take(2).Any(f => File.Exists(Path.Combine(dir, f)));
            string tokenizerSource = ownTokenizer ? dir : basePath;
            if (info.ScoreHead)
            {
                using var rm = PeftAdapter.LoadScoreModel(dir, baseOverride: basePath);
                HuggingFaceCheckpoint.Save(rm, outDir, r.GetValue(bf16), writeExtras: d => CopyTokenizer(tokenizerSource, d));
                Console.WriteLine($"wrote {outDir} (reward model, {info.Lora.TargetModules!.Count} target module names, r {info.Lora.R}, merged into {basePath})");
                return 0;
            }
            using var lm = PeftAdapter.LoadCausalLM(dir, baseOverride: basePath);
            var pretrained = new PretrainedModel(lm, TokenizerLoader.Load(tokenizerSource), tokenizerSource);
            HuggingFaceCheckpoint.Save(lm, outDir, r.GetValue(bf16), writeExtras: pretrained.WriteTokenizerFiles);
            Console.WriteLine($"wrote {outDir} ({lm.Config.ModelType}, {lm.Config.ParameterCount():N0} parameters, adapter r {info.Lora.R} on [{string.Join(", ", info.Lora.TargetModules!)}] merged into {basePath})");
            return 0;
        }));
        return new Command("lora", "LoRA adapters in PEFT's format.") { merge };
    }

    static void CopyTokenizer(string source, string dir)
    {
        if (!Directory.Exists(source)) return;
        foreach (var name in TokenizerFiles)
            if (File.Exists(Path.Combine(source, name))) File.Copy(Path.Combine(source, name), Path.Combine(dir, name));
    }
}
