using RlhfSharp.Models.T5;
using RlhfSharp.Tokenization;
using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>An encoder-decoder (T5) with its tokenizer, from what a user types after <c>--model</c>.</summary>
public sealed record PretrainedSeq2SeqModel(T5ForConditionalGeneration Model, ITokenizer Tokenizer, string Path) : IDisposable
{
    /// <summary>Whether <paramref name="spec"/> resolves to a Hugging Face folder holding a T5 model.</summary>
    public static bool IsSeq2Seq(string spec)
    {
        var path = PretrainedModel.Resolve(spec);
        if (Directory.Exists(path) && Lora.PeftAdapter.IsAdapterFolder(path)) return IsSeq2Seq(Lora.PeftAdapter.ResolveBase(path));
        return Directory.Exists(path) && T5Config.IsT5(path);
    }

    /// <summary>Loads the model and tokenizer of the folder <paramref name="spec"/> names.</summary>
    public static PretrainedSeq2SeqModel Load(string spec, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        string path = PretrainedModel.Resolve(spec);
        var model = Lora.T5Lora.LoadMerged(path, dtype, device); // a T5 folder, or a PEFT adapter on one
        var tokenizer = TokenizerLoader.Load(path);
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new RlhfException($"{path}: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {model.Config.VocabSize}: they do not belong together.");
        return new PretrainedSeq2SeqModel(model, tokenizer, path);
    }

    /// <summary>The encoder input of a text prompt: its ids and EOS, as T5's tokenizer(text) gives them.</summary>
    public int[] EncodePrompt(string text)
    {
        var ids = Tokenizer.Encode(text);
        return Tokenizer is HfTokenizer { AddEosToken: true, EosId: int eos } ? [.. ids, eos] : ids;
    }

    /// <summary>Copies this model's tokenizer files into <paramref name="dir"/> (a checkpoint being saved).</summary>
    public void WriteTokenizerFiles(string dir)
    {
        foreach (var name in new[] { "tokenizer.json", "spiece.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json" })
            if (File.Exists(System.IO.Path.Combine(Path, name))) File.Copy(System.IO.Path.Combine(Path, name), System.IO.Path.Combine(dir, name));
    }

    public void Dispose()
    {
        Model.Ilql?.Heads.Dispose();
        Model.Dispose();
    }
}
