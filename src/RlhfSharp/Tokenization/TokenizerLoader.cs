namespace RlhfSharp.Tokenization;

/// <summary>Finds and loads the tokenizer that belongs to a model path.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// <paramref name="modelPath"/> is either a Hugging Face model folder (tokenizer.json, else tokenizer.model, else spiece.model) or a
    /// llama2.c checkpoint <c>.bin</c>, whose tokenizer sits next to it as <c>tokenizer.bin</c> or <c>tok*.bin</c>.
    /// </summary>
    /// <exception cref="RlhfException">Nothing usable was found; the message names the path and the files looked for.</exception>
    public static ITokenizer Load(string modelPath)
    {
        if (Directory.Exists(modelPath)) return HfTokenizer.Load(modelPath);
        if (!File.Exists(modelPath)) throw new RlhfException($"model path not found: {modelPath} (expected a Hugging Face folder or a llama2.c .bin)");

        var dir = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        var candidates = new[] { Path.Combine(dir, "tokenizer.bin") }
            .Concat(Directory.GetFiles(dir, "tok*.bin").Order(StringComparer.Ordinal))
            .Where(p => File.Exists(p) && !string.Equals(Path.GetFullPath(p), Path.GetFullPath(modelPath), StringComparison.Ordinal))
            .ToList();
        if (candidates.Count == 0)
            throw new RlhfException($"no llama2.c tokenizer next to {modelPath}: looked for tokenizer.bin and tok*.bin in {dir}");
        // tok.bin does not store the vocab size; the checkpoint header does (6th int32 of the legacy header, after
        // the "ak42" magic and a version in the newer export). A negative value only means the classifier is unshared.
        using var reader = new BinaryReader(File.OpenRead(modelPath));
        const int Ak42Magic = 0x616b3432;
        int first = reader.ReadInt32();
        if (first == Ak42Magic) { reader.ReadInt32(); first = reader.ReadInt32(); }
        for (int i = 0; i < 4; i++) reader.ReadInt32();
        int vocabSize = Math.Abs(reader.ReadInt32());
        return Llama2cTokenizer.Load(candidates[0], vocabSize);
    }
}
