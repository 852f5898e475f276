using System.Text;

namespace RlhfSharp.Tokenization;

/// <summary>
/// The parts of a SentencePiece model file (<c>spiece.model</c>, <c>tokenizer.model</c>: a serialized
/// <c>sentencepiece.ModelProto</c>) that transformers' slow→fast conversion reads: the pieces with their scores and
/// types, the trainer's special ids and model type, and the normalizer's compiled charsmap.
/// </summary>
/// <remarks>
/// Read straight from the protobuf wire format. Field numbers and defaults are those of sentencepiece's
/// <c>src/sentencepiece_model.proto</c> (proto2; checked against the descriptor of Debian's python3-sentencepiece 0.1.97).
/// Google.Protobuf only arrives as an indirect dependency of Microsoft.ML.Tokenizers, which keeps its generated ModelProto
/// classes internal, so a reader of the wire format here needs no extra package for these dozen fields. Unknown fields
/// are skipped, as protobuf parsers do.
/// </remarks>
internal sealed class SentencePieceModelProto
{
    /// <summary><c>ModelProto.SentencePiece.Type</c>.</summary>
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    /// <summary><c>TrainerSpec.ModelType</c>.</summary>
    public enum ModelType { Unigram = 1, Bpe = 2, Word = 3, Char = 4 }

    public sealed record Piece(string Text, float Score, PieceType Type);

    public List<Piece> Pieces { get; } = [];
    // TrainerSpec defaults from sentencepiece_model.proto.
    public ModelType Type { get; private set; } = ModelType.Unigram;
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public bool ByteFallback { get; private set; }
    // NormalizerSpec defaults.
    public string NormalizerName { get; private set; } = "";
    public byte[] PrecompiledCharsmap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;

    private readonly string _path;
    private SentencePieceModelProto(string path) => _path = path;

    /// <summary>Reads <paramref name="path"/>.</summary>
    /// <exception cref="RlhfException">The file is not a ModelProto (truncated, a wrong wire type, no pieces, an unk_id outside them); the message names the file.</exception>
    public static SentencePieceModelProto Read(string path)
    {
        var proto = new SentencePieceModelProto(path);
        var data = File.ReadAllBytes(path);
        bool hasTrainerSpec = false;
        proto.ReadMessage(data, (field, wire, reader) =>
        {
            switch (field)
            {
                case 1 when wire == 2: proto.ReadPiece(reader.Bytes()); return true;          // repeated SentencePiece pieces = 1
                case 2 when wire == 2: proto.ReadTrainerSpec(reader.Bytes()); hasTrainerSpec = true; return true; // TrainerSpec trainer_spec = 2
                case 3 when wire == 2: proto.ReadNormalizerSpec(reader.Bytes()); return true; // NormalizerSpec normalizer_spec = 3
                default: return false;
            }
        });
        if (proto.Pieces.Count == 0) throw new RlhfException($"{path}: not a SentencePiece model: the ModelProto has no pieces");
        // Every trained model has one (its ids and model type); a file cut between two pieces would otherwise pass.
        if (!hasTrainerSpec) throw new RlhfException($"{path}: not a SentencePiece model: the ModelProto has no trainer_spec (field 2); is the file truncated?");
        if (proto.UnkId < 0 || proto.UnkId >= proto.Pieces.Count)
            throw new RlhfException($"{path}: trainer_spec.unk_id {proto.UnkId} is not a piece id (0..{proto.Pieces.Count - 1})");
        return proto;
    }

    private void ReadPiece(ReadOnlyMemory<byte> data)
    {
        string text = "";
        float score = 0;
        var type = PieceType.Normal;
        ReadMessage(data, (field, wire, reader) =>
        {
            switch (field)
            {
                case 1 when wire == 2: text = reader.String(); return true;                  // string piece = 1
                case 2 when wire == 5: score = reader.Float(); return true;                  // float score = 2
                case 3 when wire == 0: type = (PieceType)(int)reader.Varint(); return true;  // Type type = 3 [default = NORMAL]
                default: return false;
            }
        });
        if (!Enum.IsDefined(type)) throw new RlhfException($"{_path}: piece {Pieces.Count} (\"{text}\") has type {(int)type}, not a SentencePiece piece type");
        Pieces.Add(new Piece(text, score, type));
    }

    private void ReadTrainerSpec(ReadOnlyMemory<byte> data) => ReadMessage(data, (field, wire, reader) =>
    {
        if (wire != 0) return false;
        switch (field)
        {
            case 3: Type = (ModelType)(int)reader.Varint(); return true; // model_type = 3 [default = UNIGRAM]
            case 35: ByteFallback = reader.Varint() != 0; return true;   // byte_fallback = 35 [default = false]
            case 40: UnkId = (int)reader.Varint(); return true;          // unk_id = 40 [default = 0]
            case 41: BosId = (int)reader.Varint(); return true;          // bos_id = 41 [default = 1]
            case 42: EosId = (int)reader.Varint(); return true;          // eos_id = 42 [default = 2]
            case 43: PadId = (int)reader.Varint(); return true;          // pad_id = 43 [default = -1]
            default: return false;
        }
    });

    private void ReadNormalizerSpec(ReadOnlyMemory<byte> data) => ReadMessage(data, (field, wire, reader) =>
    {
        switch (field)
        {
            case 1 when wire == 2: NormalizerName = reader.String(); return true;               // name = 1
            case 2 when wire == 2: PrecompiledCharsmap = reader.Bytes().ToArray(); return true; // precompiled_charsmap = 2
            case 3 when wire == 0: AddDummyPrefix = reader.Varint() != 0; return true;          // add_dummy_prefix = 3 [default = true]
            default: return false;
        }
    });

    /// <summary>Walks the fields of one message; <paramref name="onField"/> consumes a field it knows and returns true, else the field is skipped.</summary>
    private void ReadMessage(ReadOnlyMemory<byte> data, Func<int, int, WireReader, bool> onField)
    {
        var reader = new WireReader(data, _path);
        while (!reader.End)
        {
            ulong key = reader.Varint();
            int field = (int)(key >> 3), wire = (int)(key & 7);
            if (field == 0) throw reader.Error("field number 0");
            if (!onField(field, wire, reader)) reader.Skip(wire);
        }
    }

    /// <summary>A cursor over protobuf wire-format bytes (varint, 64-bit, length-delimited, 32-bit).</summary>
    private sealed class WireReader(ReadOnlyMemory<byte> data, string path)
    {
        private int _pos;
        public bool End => _pos >= data.Length;

        public RlhfException Error(string what) => new($"{path}: not a SentencePiece model (ModelProto): {what} at byte {_pos}");

        public ulong Varint()
        {
            ulong value = 0;
            var span = data.Span;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= span.Length) throw Error("a varint runs past the end");
                byte b = span[_pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return value;
            }
            throw Error("a varint longer than 10 bytes");
        }

        public ReadOnlyMemory<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(data.Length - _pos)) throw Error($"a field of {length} bytes runs past the end");
            var slice = data.Slice(_pos, (int)length);
            _pos += (int)length;
            return slice;
        }

        public string String()
        {
            var bytes = Bytes().Span;
            try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
            catch (DecoderFallbackException) { throw Error("a string field is not UTF-8"); }
        }

        public float Float()
        {
            if (data.Length - _pos < 4) throw Error("a 32-bit field runs past the end");
            float value = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(data.Span.Slice(_pos, 4));
            _pos += 4;
            return value;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: if (data.Length - _pos < 8) throw Error("a 64-bit field runs past the end"); _pos += 8; break;
                case 2: Bytes(); break;
                case 5: Float(); break;
                default: throw Error($"wire type {wire}");
            }
        }
    }
}
