using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace RlhfSharp.Tokenization;

/// <summary>
/// The GPT-2 / Qwen2 / Llama 3 flavour of a Hugging Face <c>tokenizer.json</c> BPE: a regex splits the text into
/// words, each word's UTF-8 bytes are mapped to printable characters (space → <c>Ġ</c>), and merges apply by rank.
/// Built on Microsoft.ML.Tokenizers' BpeTokenizer, which does the byte mapping and the merges.
/// </summary>
internal sealed class ByteLevelBpe : IBpeModel
{
    /// <summary>GPT-2's split pattern, which HF's ByteLevel pre-tokenizer uses when <c>use_regex</c> is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<int, string> _pieces;
    private static readonly Dictionary<char, byte> UnicodeToByte = ByteToUnicodeInverse();

    /// <param name="vocab">model.vocab, in byte-mapped form.</param>
    /// <param name="merges">model.merges as pairs.</param>
    /// <param name="splitPattern">The pre-tokenizer regex (HF "Split" pattern, or <see cref="Gpt2Pattern"/>).</param>
    public ByteLevelBpe(IReadOnlyDictionary<string, int> vocab, IEnumerable<(string Left, string Right)> merges, string splitPattern)
    {
        // No special tokens go to the library: HfTokenizer cuts them out first, so text typed by a user
        // that looks like a special stays plain text.
        _pieces = vocab.ToDictionary(p => p.Value, p => p.Key);
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges.Select(m => $"{m.Left} {m.Right}"),
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(new Regex(splitPattern, RegexOptions.Compiled), null),
        });
    }

    public int[] Encode(string text, bool atTextStart) =>
        text.Length == 0 ? [] : _bpe.EncodeToIds(text, considerPreTokenization: true, considerNormalization: false).ToArray();

    public string Decode(IReadOnlyList<int> ids, bool afterBos) => _bpe.Decode(ids) ?? "";

    public byte[] TokenBytes(int id) =>
        _pieces.TryGetValue(id, out var piece) ? piece.Select(c => UnicodeToByte.TryGetValue(c, out var b) ? b : (byte)'?').ToArray() : [];

    /// <summary>GPT-2's <c>bytes_to_unicode</c> reversed: printable bytes stand for themselves, the other 68 for U+0100 onwards.</summary>
    private static Dictionary<char, byte> ByteToUnicodeInverse()
    {
        var map = new Dictionary<char, byte>();
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[printable ? (char)b : (char)next++] = (byte)b;
        }
        return map;
    }
}
