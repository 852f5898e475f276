using System.Text;

namespace RlhfSharp.Tokenization;

/// <summary>
/// The <c>model</c> of a <c>tokenizer.json</c> of type BPE, as HF tokenizers runs it (<c>tokenizers/src/models/bpe/
/// model.rs</c>): a word's characters are looked up in the vocabulary (missing ones become <c>&lt;0xXX&gt;</c> byte
/// pieces with <c>byte_fallback</c>, else the unk token), then merged by merge rank, lowest first and leftmost on ties,
/// with <see cref="BpeMerge"/>. <c>ignore_merges</c> (Llama 3) takes a word found whole in the vocabulary as it is.
/// </summary>
/// <remarks>
/// Written here instead of using Microsoft.ML.Tokenizers' BpeTokenizer because that one has no byte fallback, no
/// <c>ignore_merges</c>, and only one regex pre-tokenizer, so Sequence/Digits/Metaspace pipelines could not be exact.
/// </remarks>
internal sealed class BpeModel : ISubwordModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<(int, int), (int Rank, int Merged)> _merges = [];
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly bool _fuseUnk;
    private readonly int? _unkId;
    private readonly int[]? _byteIds;
    private readonly BpeMerge.PairLookup _lookup;
    private readonly int[] _charIds;
    private long _mergeWork;

    /// <summary>The pieces, indexed by id (null where the vocabulary has a gap).</summary>
    public string?[] Pieces { get; }

    /// <summary>Merge-queue operations done so far: the measure of work the linear-time tests read.</summary>
    public long MergeWork => Interlocked.Read(ref _mergeWork);

    public BpeModel(IReadOnlyDictionary<string, int> vocab, IEnumerable<(string Left, string Right)> merges,
        bool byteFallback, bool ignoreMerges, bool fuseUnk, int? unkId, string path)
    {
        _vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        Pieces = new string?[vocab.Count == 0 ? 0 : vocab.Values.Max() + 1];
        foreach (var (piece, id) in vocab) Pieces[id] = piece;
        int rank = 0;
        foreach (var (left, right) in merges)
        {
            if (!_vocab.TryGetValue(left, out int l) || !_vocab.TryGetValue(right, out int r) || !_vocab.TryGetValue(left + right, out int merged))
                throw new RlhfException($"{path}: merge \"{left} {right}\" uses a piece that is not in model.vocab");
            _merges.TryAdd((l, r), (rank++, merged));
        }
        // One-character pieces by char: the lookup every character of every word does, without a substring each.
        _charIds = new int[char.MaxValue + 1];
        Array.Fill(_charIds, -1);
        foreach (var (piece, id) in _vocab) if (piece.Length == 1 && !char.IsSurrogate(piece[0])) _charIds[piece[0]] = id;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _fuseUnk = fuseUnk;
        _unkId = unkId;
        if (byteFallback)
        {
            _byteIds = new int[256];
            for (int b = 0; b < 256; b++) _byteIds[b] = _vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        }
        _lookup = (int left, int right, out int priority, out int merged) =>
        {
            bool found = _merges.TryGetValue((left, right), out var m);
            (priority, merged) = m;
            return found;
        };
    }

    /// <summary>The id of a piece, if the vocabulary has it.</summary>
    public bool TryGetId(string piece, out int id) => _vocab.TryGetValue(piece, out id);

    /// <summary>Encodes one pre-tokenized word.</summary>
    public int[] EncodeWord(string word)
    {
        if (word.Length == 0) return [];
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole)) return [whole];
        var symbols = new List<int>(word.Length);
        Span<byte> utf8 = stackalloc byte[4];
        bool previousUnk = false;
        for (int i = 0; i < word.Length;)
        {
            var rune = Rune.GetRuneAt(word, i);
            int length = rune.Utf16SequenceLength;
            int id = length == 1 ? _charIds[word[i]] : _vocab.TryGetValue(word.Substring(i, length), out int found) ? found : -1;
            if (id >= 0) { symbols.Add(id); previousUnk = false; }
            else if (_byteIds is not null && AllBytesKnown(rune, utf8, out int n))
            {
                for (int k = 0; k < n; k++) symbols.Add(_byteIds[utf8[k]]);
                previousUnk = false;
            }
            else if (_unkId is int unk)
            {
                if (!(_fuseUnk && previousUnk)) symbols.Add(unk);
                previousUnk = true;
            }
            else throw new RlhfException($"tokenizer.json: the character '{rune}' is not in model.vocab and the BPE model has no unk_token");
            i += length;
        }
        var ids = symbols.ToArray();
        int count = BpeMerge.Merge(ids, _lookup, out long work);
        Interlocked.Add(ref _mergeWork, work);
        return ids[..count];
    }

    private bool AllBytesKnown(Rune rune, Span<byte> utf8, out int n)
    {
        n = rune.EncodeToUtf8(utf8);
        for (int k = 0; k < n; k++) if (_byteIds![utf8[k]] < 0) return false;
        return true;
    }
}
