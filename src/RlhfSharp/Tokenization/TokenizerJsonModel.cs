using System.Text;

namespace RlhfSharp.Tokenization;

/// <summary>
/// The part of a <c>tokenizer.json</c> after normalization: the pre-tokenizer cuts words, the model (BPE or Unigram)
/// encodes each word (through a cache of repeated words), and decoding reverses the byte-level map (GPT-2, Qwen2,
/// Llama 3) or the SentencePiece <c>▁</c> and <c>&lt;0xXX&gt;</c> pieces (LLaMA 1/2, T5, Pegasus).
/// </summary>
internal sealed class TokenizerJsonModel : IBpeModel
{
    private readonly PreTokenizer _preTokenizer;
    private readonly ISubwordModel _bpe;
    private readonly bool _byteLevelDecode;
    private readonly bool _stripDummySpace;
    private readonly bool _metaspaceDecoder;
    private readonly WordSplitter _words;
    private static readonly Dictionary<char, byte> CharToByte =
        PreTokenizer.ByteCharacters.Select((c, b) => (c[0], (byte)b)).ToDictionary(x => x.Item1, x => x.Item2);

    /// <param name="preTokenizer">The pre-tokenizer (possibly empty).</param>
    /// <param name="bpe">The BPE or Unigram model.</param>
    /// <param name="byteLevelDecode">Decode with GPT-2's byte map (a ByteLevel decoder) rather than as SentencePiece pieces.</param>
    /// <param name="stripDummySpace">The tokenizer prepends <c>▁</c>, so decoding after BOS drops that one space.</param>
    /// <param name="metaspaceDecoder">The decoder is HF's Metaspace decoder (T5, Pegasus): asked to drop the dummy
    /// space, it drops every <c>▁</c> of the first piece (decoders/metaspace.rs, <c>i == 0</c>), not one space.</param>
    public TokenizerJsonModel(PreTokenizer preTokenizer, ISubwordModel bpe, bool byteLevelDecode, bool stripDummySpace, bool metaspaceDecoder = false)
    {
        _metaspaceDecoder = metaspaceDecoder;
        _preTokenizer = preTokenizer;
        _bpe = bpe;
        _byteLevelDecode = byteLevelDecode;
        _stripDummySpace = stripDummySpace;
        // Without a pre-tokenizer (LLaMA 1/2: the normalizer maps spaces to ▁) the text is one word; cutting it at
        // runs of ▁ is exact when no piece crosses such a boundary, and lets repeated words hit the cache.
        _words = new WordSplitter(bpe.Pieces, '▁');
    }

    /// <summary>Merge-queue operations done so far (see <see cref="BpeMerge"/>).</summary>
    public long MergeWork => (_bpe as BpeModel)?.MergeWork ?? 0;

    /// <summary>The subword model, for token lookups.</summary>
    public ISubwordModel Bpe => _bpe;

    public int[] Encode(string text, bool atTextStart)
    {
        if (text.Length == 0) return [];
        var ids = new List<int>();
        foreach (var word in _preTokenizer.Split(text, atTextStart))
        {
            foreach (var (start, length) in _words.Split(word))
                ids.AddRange(_words.Encode(length == word.Length ? word : word.Substring(start, length), _bpe.EncodeWord));
        }
        return ids.ToArray();
    }

    public string Decode(IReadOnlyList<int> ids, bool afterBos)
    {
        if (!_byteLevelDecode && _metaspaceDecoder && afterBos && ids.Count > 0)
            return SentencePieceText.Decode(ids.Select((id, i) => i == 0 ? (_bpe.Pieces[id] ?? "").Replace("▁", "") : _bpe.Pieces[id] ?? ""), stripFirstSpace: false);
        if (!_byteLevelDecode)
            return SentencePieceText.Decode(ids.Select(id => _bpe.Pieces[id] ?? ""), stripFirstSpace: afterBos && _stripDummySpace);
        var bytes = new List<byte>();
        foreach (var id in ids) bytes.AddRange(TokenBytes(id));
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    public byte[] TokenBytes(int id)
    {
        var piece = id >= 0 && id < _bpe.Pieces.Length ? _bpe.Pieces[id] ?? "" : "";
        if (!_byteLevelDecode) return SentencePieceText.Bytes(piece);
        // decoders/byte_level.rs: a piece with a character outside the byte map stands for its own UTF-8.
        var bytes = new byte[piece.Length];
        for (int i = 0; i < piece.Length; i++)
        {
            if (!CharToByte.TryGetValue(piece[i], out bytes[i])) return Encoding.UTF8.GetBytes(piece);
        }
        return bytes;
    }
}
