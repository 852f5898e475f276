using System.Text;

namespace RlhfSharp.Tokenization;

/// <summary>
/// The <c>model</c> of a tokenizer.json of type Unigram (SentencePiece's unigram language model: T5, FLAN-T5, Pegasus,
/// mBART, XLM-R), as HF tokenizers runs it (<c>tokenizers/src/models/unigram/model.rs</c>, <c>encode_optimized</c>,
/// itself SentencePiece's <c>unigram_model.cc</c>): the segmentation of a word with the highest sum of piece scores
/// (Viterbi over every vocabulary piece that starts at each character).
/// </summary>
/// <remarks>
/// Unknown characters: where no one-character piece starts at a position, an unknown node covers that one character
/// with score <c>min(score) − 10</c> (<c>K_UNK_PENALTY</c>), so any text has a path. Adjacent unknown nodes of the best
/// path are fused into one token (<c>fuse_unk</c>, always on for Unigram). A token that is not a vocabulary piece then
/// becomes its UTF-8 bytes as <c>&lt;0xXX&gt;</c> pieces when <c>byte_fallback</c> is set and all of them exist, else
/// the unk id. Candidates are tried shortest first and a later one must score strictly higher to win, as in HF.
/// </remarks>
internal sealed class UnigramModel : ISubwordModel
{
    // models/unigram/model.rs: K_UNK_PENALTY.
    private const double UnknownPenalty = 10.0;

    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly double[] _scores;
    private readonly int _unkId;
    private readonly double _unkScore;
    private readonly bool _byteFallback;
    private readonly int _longestPiece;

    public string?[] Pieces { get; }

    /// <param name="pieces">The vocabulary in id order: piece and log-probability score.</param>
    /// <param name="unkId">The id of the unknown piece (<c>unk_id</c>).</param>
    /// <param name="byteFallback">Unknown text becomes <c>&lt;0xXX&gt;</c> byte pieces where the vocabulary has them.</param>
    /// <param name="path">The file, for error messages.</param>
    public UnigramModel(IReadOnlyList<(string Piece, double Score)> pieces, int? unkId, bool byteFallback, string path)
    {
        if (pieces.Count == 0) throw new RlhfException($"{path}: model.vocab of the Unigram model is empty");
        if (unkId is not int unk || unk < 0 || unk >= pieces.Count)
            throw new RlhfException($"{path}: model.unk_id of the Unigram model must be an id in model.vocab (0..{pieces.Count - 1}), got {unkId?.ToString() ?? "null"}");
        Pieces = new string?[pieces.Count];
        _scores = new double[pieces.Count];
        _ids = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        double minScore = double.MaxValue;
        for (int id = 0; id < pieces.Count; id++)
        {
            var (piece, score) = pieces[id];
            Pieces[id] = piece;
            _scores[id] = score;
            _ids[piece] = id; // a duplicated piece maps to its last id, as token_to_ids.insert does
            minScore = Math.Min(minScore, score);
            _longestPiece = Math.Max(_longestPiece, piece.Length);
        }
        _lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
        _unkId = unk;
        _unkScore = minScore - UnknownPenalty;
        _byteFallback = byteFallback;
    }

    public int[] EncodeWord(string word)
    {
        if (word.Length == 0) return [];
        var ids = new List<int>();
        foreach (var (start, end, isUnknown) in BestPath(word))
        {
            var token = word.AsSpan(start, end - start);
            if (!isUnknown && _lookup.TryGetValue(token, out int id)) { ids.Add(id); continue; }
            // An unknown (possibly fused) stretch: the vocabulary may still hold it whole (model.rs `tokenize`).
            if (_lookup.TryGetValue(token, out id)) ids.Add(id);
            else if (!(_byteFallback && TryAddBytes(token, ids))) ids.Add(_unkId);
        }
        return ids.ToArray();
    }

    /// <summary>The best segmentation as (start, end, unknown) in UTF-16 units, unknown neighbours fused.</summary>
    private List<(int Start, int End, bool Unknown)> BestPath(string word)
    {
        int n = word.Length;
        var score = new double[n + 1];
        var from = new int[n + 1];
        var unknown = new bool[n + 1];
        Array.Fill(from, -1);
        var span = word.AsSpan();
        for (int start = 0; start < n;)
        {
            int charLength = char.IsHighSurrogate(word[start]) && start + 1 < n && char.IsLowSurrogate(word[start + 1]) ? 2 : 1;
            if (start > 0 && from[start] < 0) { start += charLength; continue; } // inside a surrogate pair: unreachable
            double here = score[start];
            bool hasSingle = false;
            int longest = Math.Min(_longestPiece, n - start);
            for (int length = 1; length <= longest; length++)
            {
                if (!_lookup.TryGetValue(span.Slice(start, length), out int id)) continue;
                double candidate = here + _scores[id];
                int end = start + length;
                if (from[end] < 0 || candidate > score[end]) { score[end] = candidate; from[end] = start; unknown[end] = false; }
                if (length == charLength) hasSingle = true;
            }
            if (!hasSingle)
            {
                int end = start + charLength;
                double candidate = here + _unkScore;
                if (from[end] < 0 || candidate > score[end]) { score[end] = candidate; from[end] = start; unknown[end] = true; }
            }
            start += charLength;
        }

        var path = new List<(int, int, bool)>();
        for (int end = n; end > 0;)
        {
            int start = from[end];
            // Backwards, an unknown node right before a fused unknown stretch joins it (fuse_unk).
            if (unknown[end] && path.Count > 0 && path[^1] is (var s, var e, true) && s == end) path[^1] = (start, e, true);
            else path.Add((start, end, unknown[end]));
            end = start;
        }
        path.Reverse();
        return path;
    }

    private bool TryAddBytes(ReadOnlySpan<char> text, List<int> ids)
    {
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        var byteIds = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
            if (!_ids.TryGetValue($"<0x{bytes[i]:X2}>", out byteIds[i])) return false;
        ids.AddRange(byteIds);
        return true;
    }
}
