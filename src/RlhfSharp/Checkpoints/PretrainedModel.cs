using RlhfSharp.Models;
using RlhfSharp.Tokenization;
using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// A causal LM with its tokenizer, found from what a user types after <c>--model</c>: a built-in name, a
/// Hugging Face folder or a llama2.c <c>.bin</c>.
/// </summary>
public sealed record PretrainedModel(CausalLM Model, ITokenizer Tokenizer, string Path) : IDisposable
{
    /// <summary>Built-in models shipped with the library (name → file under the app's models/ folder).</summary>
    public static IReadOnlyDictionary<string, string> BuiltIn { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["stories260k"] = System.IO.Path.Combine("models", "stories260K", "stories260K.bin"),
    };

    /// <summary>
    /// Turns what follows <c>--model</c> into a local path: a built-in name, an existing file or folder, else a Hub id
    /// <c>org/name[@revision]</c> found in the Hugging Face cache or downloaded into it.
    /// </summary>
    public static string Resolve(string spec)
    {
        if (BuiltIn.TryGetValue(spec, out var relative))
        {
            string path = System.IO.Path.Combine(AppContext.BaseDirectory, relative);
            if (!File.Exists(path)) throw new RlhfException($"built-in model '{spec}' is missing from the installation ({path}).");
            return path;
        }
        if (Directory.Exists(spec) || File.Exists(spec)) return spec;
        // Then the Hugging Face cache, then a download (Hub/HubResolver.cs).
        if (Hub.HubRepo.TryParse(spec) is { } repo)
        {
            try { return Hub.HubResolver.FromEnvironment().ResolveModel(repo); }
            catch (RlhfException e) { throw new RlhfException($"{e.Message} (No local file or folder '{spec}' exists either.)"); }
        }
        throw new RlhfException($"model '{spec}' not found: give a Hub id (org/name[@revision]), a Hugging Face folder, a llama2.c .bin file, or a built-in name ({string.Join(", ", BuiltIn.Keys)}).");
    }

    /// <summary>Loads the model and tokenizer <paramref name="spec"/> names.</summary>
    /// <param name="spec">A built-in name, a Hugging Face folder or a llama2.c <c>.bin</c>.</param>
    /// <param name="dtype">Element type to hold the weights in (float32, bfloat16 or float16), whatever the files store.</param>
    /// <param name="device">Where the model runs (default CPU).</param>
    /// <param name="kvCache">The generation the caller will run (batch, prompt + new tokens), counted in the memory check.</param>
    public static PretrainedModel Load(string spec, ScalarType dtype = ScalarType.Float32, Device? device = null, (int Batch, int Tokens)? kvCache = null)
    {
        string path = Resolve(spec);
        if (Directory.Exists(path) && PretrainedSeq2SeqModel.IsSeq2Seq(path))
            throw new RlhfException($"{path} is an encoder-decoder (T5) model; this command takes decoder-only models. T5 works with rlhf generate, eval, tokenize, sft, rm, dpo, ipo, kto, simpo, orpo, ppo, nlpo and the grpo family.");
        var model = Directory.Exists(path)
            ? HuggingFaceCheckpoint.LoadCausalLM(path, dtype, device, kvCache)
            : Llama2cCheckpoint.LoadCausalLM(path, dtype, device);
        // A PEFT adapter saved without tokenizer files uses its base model's tokenizer.
        bool bareAdapter = Directory.Exists(path) && Lora.PeftAdapter.IsAdapterFolder(path)
                           && !File.Exists(System.IO.Path.Combine(path, "tokenizer.json")) && !File.Exists(System.IO.Path.Combine(path, "tokenizer.model"));
        var tokenizer = TokenizerLoader.Load(bareAdapter ? Lora.PeftAdapter.ResolveBase(path) : path);
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new RlhfException($"{path}: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {model.Config.VocabSize}: they do not belong together.");
        // An ILQL checkpoint decodes with its heads (IlqlHeadsFile): generate, serve, chat and eval then sample the ILQL policy.
        IlqlHeadsFile.AttachIfPresent(model, path);
        return new PretrainedModel(model, tokenizer, path);
    }

    /// <summary>The ids a text prompt starts generation from: BOS first where the model family expects it.</summary>
    public int[] EncodePrompt(string text) => Tokenizer.Encode(text, addBos: AddsBos);

    /// <summary>Whether prompts start with BOS: as tokenizer_config.json says, else for LLaMA-family models with a BOS.</summary>
    public bool AddsBos => Tokenizer switch
    {
        HfTokenizer hf => hf.AddBosToken,
        _ => Tokenizer.BosId is not null && Model.Config.Family == ModelFamily.Llama,
    };

    /// <summary>Writes this model's tokenizer as HF files into <paramref name="dir"/> (a checkpoint being saved).</summary>
    public void WriteTokenizerFiles(string dir)
    {
        if (Tokenizer is Llama2cTokenizer llama2c) llama2c.SaveHuggingFace(dir, Model.Config.MaxPositions);
        else if (Directory.Exists(Path))
            foreach (var name in new[] { "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt", "spiece.model" })
                if (File.Exists(System.IO.Path.Combine(Path, name))) File.Copy(System.IO.Path.Combine(Path, name), System.IO.Path.Combine(dir, name));
    }

    public void Dispose()
    {
        Model.Ilql?.Heads.Dispose();
        Model.Dispose();
    }
}
