using System.CommandLine;
using RlhfSharp.Checkpoints;

namespace RlhfSharp.Cli.Commands;

/// <summary><c>rlhf convert</c>: write any model we can read as a Hugging Face folder.</summary>
public static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Hub id (org/name[@revision]), HF folder, llama2.c .bin, or built-in name.", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Folder to write (config.json, model.safetensors, tokenizer files).", Required = true };
        var bf16 = new Option<bool>("--bf16") { Description = "Store weights as BF16 instead of F32." };
        var command = new Command("convert", "Write a model (llama2.c or HF) as a Hugging Face folder that transformers loads.") { model, output, bf16 };
        command.SetAction(r => Program.Run(() =>
        {
            // Held in the dtype it is written in: a bf16 conversion never holds the float32 weights (the cast is the same either way).
            using var pretrained = PretrainedModel.Load(r.GetValue(model)!, r.GetValue(bf16) ? TorchSharp.torch.ScalarType.BFloat16 : TorchSharp.torch.ScalarType.Float32);
            HuggingFaceCheckpoint.Save(pretrained.Model, r.GetValue(output)!, r.GetValue(bf16), writeExtras: pretrained.WriteTokenizerFiles);
            Console.WriteLine($"wrote {r.GetValue(output)} ({pretrained.Model.Config.ModelType}, {pretrained.Model.Config.ParameterCount():N0} parameters)");
            return 0;
        }));
        return command;
    }
}
