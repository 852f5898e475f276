using Microsoft.ML.Tokenizers;

namespace RlhfSharp.Tokenization;

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (the protobuf LLaMA 1/2 ship), read by Microsoft.ML.Tokenizers'
/// LlamaTokenizer. Decoding goes through the pieces so that the dummy-space rule matches the other tokenizers.
/// </summary>
internal sealed class SentencePieceModelFile : IBpeModel
{
    private readonly LlamaTokenizer _sp;
    private readonly string[] _pieces;

    public SentencePieceModelFile(string path)
    {
        using var stream = File.OpenRead(path);
        _sp = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
        _pieces = new string[_sp.Vocabulary.Values.Max() + 1];
        foreach (var (piece, id) in _sp.Vocabulary) _pieces[id] = piece;
    }

    public IReadOnlyDictionary<string, int> Vocabulary => _sp.Vocabulary;
    public int BosId => _sp.BeginningOfSentenceId;
    public int EosId => _sp.EndOfSentenceId;
    public int UnkId => _sp.UnknownId;
    /// <summary>The piece of an id ("" outside the vocabulary).</summary>
    public string Piece(int id) => id >= 0 && id < _pieces.Length ? _pieces[id] ?? "" : "";

    public int[] Encode(string text, bool atTextStart) =>
        text.Length == 0 ? [] : _sp.EncodeToIds(text, considerPreTokenization: true, considerNormalization: true).ToArray();

    public string Decode(IReadOnlyList<int> ids, bool afterBos) =>
        SentencePieceText.Decode(ids.Select(id => _pieces[id]), stripFirstSpace: afterBos && _sp.AddDummyPrefix);

    public byte[] TokenBytes(int id) => SentencePieceText.Bytes(_pieces[id] ?? "");
}
