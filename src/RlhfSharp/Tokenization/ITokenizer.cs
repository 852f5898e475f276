namespace RlhfSharp.Tokenization;

/// <summary>
/// What the trainers and the sampler need from a tokenizer: ids in, text out, and the special ids.
/// Implementations wrap Microsoft.ML.Tokenizers where it reads the format, and read llama2.c's
/// tok.bin by hand because no library does.
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of ids the tokenizer can produce (its vocab plus added tokens).</summary>
    int VocabSize { get; }
    int? BosId { get; }
    int? EosId { get; }
    /// <summary>The pad id; falls back to EOS where the tokenizer defines none (the HF convention for causal LMs).</summary>
    int? PadId { get; }

    /// <summary>Encodes text. Special-token strings inside <paramref name="text"/> are treated as plain text.</summary>
    int[] Encode(string text, bool addBos = false);

    /// <summary>Decodes ids; BOS/EOS/PAD are dropped when <paramref name="skipSpecial"/> is set.</summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecial = true);
}
