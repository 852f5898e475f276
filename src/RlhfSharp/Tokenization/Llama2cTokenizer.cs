using System.Text;

namespace RlhfSharp.Tokenization;

/// <summary>
/// The tokenizer of Karpathy's llama2.c (<c>tok.bin</c>, as exported by its <c>tokenizer.py</c>): a SentencePiece
/// BPE vocabulary with scores, encoded exactly as <c>run.c</c> does. No library reads this format.
/// </summary>
/// <remarks>
/// File layout (little-endian): <c>int32 max_token_length</c>, then for each id <c>float32 score, int32 len,
/// len bytes</c> of UTF-8. Id 0 is &lt;unk&gt;, 1 is BOS, 2 is EOS, 3..258 are the byte pieces &lt;0x00&gt;..&lt;0xFF&gt;.
/// Spaces are stored as real spaces, not <c>▁</c>.
/// </remarks>
public sealed partial class Llama2cTokenizer : ITokenizer
{
    /// <summary>Byte-fallback ids start here: byte b is id b + 3 (run.c: <c>tokens[n] = byte + 3</c>).</summary>
    private const int ByteOffset = 3;

    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly Dictionary<string, int> _ids;
    private readonly SpecialTokenSplitter _specials;

    /// <summary>The pieces, indexed by id, as stored (spaces are real spaces; BOS is stored as "\n&lt;s&gt;\n").</summary>
    public IReadOnlyList<string> Pieces => _pieces;
    /// <summary>The merge scores, indexed by id: a higher score merges first.</summary>
    public IReadOnlyList<float> Scores => _scores;

    public int VocabSize => _pieces.Length;
    public int? BosId => 1;
    public int? EosId => 2;
    /// <summary>llama2.c has no pad token, so this is EOS (the HF convention for causal LMs).</summary>
    public int? PadId => EosId;
    /// <summary>&lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;: the special-tokens map of the LlamaTokenizer <see cref="SaveHuggingFace"/> writes.</summary>
    public IReadOnlyList<int> SpecialIds => [1, 2, 0];

    private Llama2cTokenizer(string[] pieces, float[] scores)
    {
        _pieces = pieces;
        _scores = scores;
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length; i++) _ids.TryAdd(pieces[i], i);
        _specials = new SpecialTokenSplitter(new Dictionary<string, int> { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 });
        // run.c merges the pair whose merged piece has the highest score, the leftmost among equal scores: the
        // priority is the dense rank of the score, so equal scores tie and the queue picks the leftmost.
        var rankOfScore = scores.Distinct().OrderByDescending(x => x).Select((score, rank) => (score, rank)).ToDictionary(x => x.score, x => x.rank);
        var pairs = new Dictionary<(int, int), (int Priority, int Merged)>();
        for (int merged = 0; merged < pieces.Length; merged++)
        {
            var piece = pieces[merged];
            if (_ids[piece] != merged) continue; // run.c's lookup finds the first id of a string
            for (int k = 1; k < piece.Length; k++)
                if (_ids.TryGetValue(piece[..k], out int left) && _ids.TryGetValue(piece[k..], out int right))
                    pairs.TryAdd((left, right), (rankOfScore[scores[merged]], merged));
        }
        _mergeLookup = (int left, int right, out int priority, out int merged) =>
        {
            bool found = pairs.TryGetValue((left, right), out var m);
            (priority, merged) = m;
            return found;
        };
        _words = new WordSplitter(pieces, ' ');
    }

    private readonly BpeMerge.PairLookup _mergeLookup;
    private readonly WordSplitter _words;

    /// <summary>Reads a llama2.c <c>tok.bin</c>. <paramref name="vocabSize"/> is the model's vocab size (the file does not store it).</summary>
    public static Llama2cTokenizer Load(string path, int vocabSize)
    {
        if (!File.Exists(path)) throw new RlhfException($"llama2.c tokenizer file not found: {path}");
        using var reader = new BinaryReader(File.OpenRead(path));
        reader.ReadInt32(); // max_token_length: run.c sizes a buffer with it; C# strings need no buffer.
        var pieces = new string[vocabSize];
        var scores = new float[vocabSize];
        try
        {
            for (int i = 0; i < vocabSize; i++)
            {
                scores[i] = reader.ReadSingle();
                int length = reader.ReadInt32();
                pieces[i] = Encoding.UTF8.GetString(reader.ReadBytes(length));
            }
        }
        catch (EndOfStreamException e)
        {
            throw new RlhfException($"{path} ends before its {vocabSize} tokens: is it a llama2.c tok.bin for this model?", e);
        }
        return new Llama2cTokenizer(pieces, scores);
    }

    /// <summary>Reads a llama2.c <c>tok.bin</c>, taking the vocab size from the file length (every token record is read until the end).</summary>
    public static Llama2cTokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new RlhfException($"llama2.c tokenizer file not found: {path}");
        using var reader = new BinaryReader(File.OpenRead(path));
        reader.ReadInt32();
        int count = 0;
        while (reader.BaseStream.Position < reader.BaseStream.Length)
        {
            reader.ReadSingle();
            reader.BaseStream.Seek(reader.ReadInt32(), SeekOrigin.Current);
            count++;
        }
        return Load(path, count);
    }

    /// <summary>Encodes like run.c's <c>encode</c>: dummy space prefix, codepoint lookup with byte fallback, then greedy best-score merges.</summary>
    public int[] Encode(string text, bool addBos = false)
    {
        var tokens = new List<int>();
        if (addBos) tokens.Add(1);
        tokens.AddRange(EncodePlain(text));
        return tokens.ToArray();
    }

    public int[] EncodeWithSpecialTokens(string text, bool addBos = false, IReadOnlyList<(int Start, int Length)>? plainSpans = null)
    {
        var tokens = new List<int>();
        if (addBos) tokens.Add(1);
        tokens.AddRange(_specials.Encode(text, EncodePlain, plainSpans));
        return tokens.ToArray();
    }

    private int[] EncodePlain(string text)
    {
        // run.c adds the dummy prefix only for non-empty text, as SentencePiece's add_dummy_prefix does.
        if (text.Length == 0) return [];
        var tokens = new List<int>();
        var normalized = " " + text;
        foreach (var (start, length) in _words.Split(normalized))
            tokens.AddRange(_words.Encode(normalized.Substring(start, length), EncodeWord));
        return tokens.ToArray();
    }

    /// <summary>One word: codepoint lookup with byte fallback (run.c), then the merges by score (<see cref="BpeMerge"/>).</summary>
    private int[] EncodeWord(string word)
    {
        var tokens = new List<int>(word.Length + 1);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in word.EnumerateRunes())
        {
            if (_ids.TryGetValue(rune.ToString(), out int id)) { tokens.Add(id); continue; }
            int n = rune.EncodeToUtf8(utf8);
            for (int k = 0; k < n; k++) tokens.Add(utf8[k] + ByteOffset);
        }
        var symbols = tokens.ToArray();
        int count = BpeMerge.Merge(symbols, _mergeLookup, out long work);
        Interlocked.Add(ref _mergeWork, work);
        return symbols[..count];
    }

    private long _mergeWork;

    /// <summary>Merge-queue operations done by all encodes so far: the measure of work the linear-time tests read.</summary>
    public long MergeWork => Interlocked.Read(ref _mergeWork);

    /// <summary>
    /// Decodes ids. A piece directly after BOS loses its leading space (run.c's rule, undoing the dummy prefix);
    /// anywhere else the text is byte-exact, so decoding new tokens alone keeps their leading space.
    /// </summary>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecial = true)
    {
        var text = new StringBuilder();
        var run = new List<string>();
        bool runFollowsBos = false;
        void Flush()
        {
            text.Append(SentencePieceText.Decode(run, runFollowsBos));
            run.Clear();
        }
        foreach (int id in ids)
        {
            if (id is 0 or 1 or 2)
            {
                Flush();
                if (!skipSpecial) text.Append(_pieces[id].Trim('\n'));
                runFollowsBos = id == 1;
                continue;
            }
            run.Add(_pieces[id]);
        }
        Flush();
        return text.ToString();
    }

    /// <summary>The byte pieces &lt;0x00&gt;..&lt;0xFF&gt; stand for one raw byte each; other pieces for their UTF-8 text.</summary>
    public byte[] TokenBytes(int id) =>
        id >= ByteOffset && id < ByteOffset + 256 ? [(byte)(id - ByteOffset)] : Encoding.UTF8.GetBytes(id is 0 or 1 or 2 ? Decode([id], skipSpecial: false) : _pieces[id]);
}
