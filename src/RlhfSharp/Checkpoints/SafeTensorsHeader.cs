using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>One tensor of a safetensors file: its name, element type, shape and byte range in the data section.</summary>
public sealed record SafeTensorsEntry(string Name, string Dtype, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (1 for a scalar).</summary>
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    /// <summary>The torch element type of the stored bytes.</summary>
    public ScalarType ScalarType => SafeTensorsHeader.ScalarTypeOf(Dtype);
    /// <summary>Bytes per element.</summary>
    public int Width => SafeTensorsHeader.WidthOf(Dtype);
    /// <summary>The shape as <c>3x4</c>, for messages.</summary>
    public string ShapeText => Shape.Length == 0 ? "scalar" : string.Join("x", Shape);
}

/// <summary>
/// The header of a safetensors file, validated the way the format's reference reader does
/// (huggingface/safetensors <c>safetensors/src/tensor.rs</c>, <c>Metadata::validate</c>) before a byte of data is
/// trusted: a header under 100 MB of valid UTF-8 JSON starting with <c>{</c>; every entry an object with a string
/// <c>dtype</c>, a <c>shape</c> of non-negative integers and two integer <c>data_offsets</c>; no duplicate names;
/// offsets that tile the data section exactly (sorted, contiguous from 0 to its end, no holes or overlaps) with each
/// range as long as dtype × shape. Errors name the file and the tensor.
/// </summary>
public sealed class SafeTensorsHeader
{
    /// <summary>The reference reader's cap on the JSON header (safetensors' <c>MAX_HEADER_SIZE</c>).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The file the header was read from.</summary>
    public string Path { get; }
    /// <summary>Offset in the file of the first data byte (8 + header length).</summary>
    public long DataStart { get; }
    /// <summary>Tensors in the order of their data in the file.</summary>
    public IReadOnlyList<SafeTensorsEntry> Entries { get; }
    readonly Dictionary<string, SafeTensorsEntry> byName;

    SafeTensorsHeader(string path, long dataStart, List<SafeTensorsEntry> entries)
    {
        Path = path; DataStart = dataStart; Entries = entries;
        byName = entries.ToDictionary(e => e.Name);
    }

    /// <summary>The entry named <paramref name="name"/>, or null.</summary>
    public SafeTensorsEntry? Find(string name) => byName.GetValueOrDefault(name);

    /// <summary>Bytes of all tensor data (the file's size minus the header).</summary>
    public long DataBytes => Entries.Count == 0 ? 0 : Entries[^1].End;

    /// <summary>Reads and validates the header of <paramref name="path"/>; reads no tensor data.</summary>
    public static SafeTensorsHeader Read(string path)
    {
        if (!File.Exists(path)) throw new RlhfException($"{path}: file not found.");
        using var stream = File.OpenRead(path);
        Span<byte> lenBytes = stackalloc byte[8];
        if (stream.ReadAtLeast(lenBytes, 8, throwOnEndOfStream: false) != 8) throw new RlhfException($"{path}: too short to be a safetensors file.");
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > MaxHeaderBytes)
            throw new RlhfException($"{path}: header length {headerLen} is over the format's {MaxHeaderBytes}-byte limit: not a safetensors file.");
        if (headerLen > (ulong)stream.Length - 8)
            throw new RlhfException($"{path}: header length {headerLen} does not fit the file ({stream.Length} bytes): not a safetensors file.");
        var headerBytes = new byte[headerLen];
        stream.ReadExactly(headerBytes);
        if (!System.Text.Unicode.Utf8.IsValid(headerBytes)) throw new RlhfException($"{path}: the header is not valid UTF-8.");
        if (headerBytes.Length == 0 || headerBytes[0] != (byte)'{') throw new RlhfException($"{path}: the header does not start with '{{': not a safetensors file.");
        long dataStart = 8 + (long)headerLen;
        var entries = Parse(path, headerBytes);
        CheckLayout(path, entries, stream.Length - dataStart);
        return new SafeTensorsHeader(path, dataStart, entries);
    }

    static List<SafeTensorsEntry> Parse(string path, byte[] headerBytes)
    {
        JsonDocument doc;
        // JsonDocument keeps duplicate property names (JsonObject would throw on first access): we refuse them by name.
        try { doc = JsonDocument.Parse(headerBytes, new JsonDocumentOptions { MaxDepth = 64 }); }
        catch (JsonException e) { throw new RlhfException($"{path}: the header is not valid JSON ({e.Message})."); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new RlhfException($"{path}: the header is not a JSON object.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var entries = new List<SafeTensorsEntry>();
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            string name = property.Name;
            if (!seen.Add(name)) throw new RlhfException($"{path}: tensor '{name}' appears twice in the header.");
            var info = property.Value;
            if (name == "__metadata__")
            {
                if (info.ValueKind != JsonValueKind.Object || info.EnumerateObject().Any(m => m.Value.ValueKind != JsonValueKind.String))
                    throw new RlhfException($"{path}: '__metadata__' must be an object of strings.");
                continue;
            }
            if (info.ValueKind != JsonValueKind.Object) throw new RlhfException($"{path}: tensor '{name}' is not an object.");
            if (!info.TryGetProperty("dtype", out var dtypeNode)) throw new RlhfException($"{path}: tensor '{name}' has no dtype.");
            if (dtypeNode.ValueKind != JsonValueKind.String) throw new RlhfException($"{path}: tensor '{name}' has dtype {dtypeNode.GetRawText()}, not a string.");
            string dtype = dtypeNode.GetString()!;
            if (!Known(dtype)) throw new RlhfException($"{path}: tensor '{name}' has dtype {dtype}; supported: F32, F16, BF16.");
            var shape = Integers(path, name, info, "shape", length: null);
            var offsets = Integers(path, name, info, "data_offsets", length: 2);
            entries.Add(new SafeTensorsEntry(name, dtype, shape, offsets[0], offsets[1]));
        }
        return entries;
    }

    static long[] Integers(string path, string name, JsonElement info, string key, int? length)
    {
        if (!info.TryGetProperty(key, out var node)) throw new RlhfException($"{path}: tensor '{name}' has no {key}.");
        if (node.ValueKind != JsonValueKind.Array) throw new RlhfException($"{path}: tensor '{name}' has {key} {Clip(node.GetRawText())}, not an array.");
        var values = new List<long>();
        foreach (var item in node.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v) || v < 0)
                throw new RlhfException($"{path}: tensor '{name}' has {key} {Clip(node.GetRawText())}: each must be a non-negative integer.");
            values.Add(v);
        }
        if (length is int n && values.Count != n)
            throw new RlhfException($"{path}: tensor '{name}' has {key} {Clip(node.GetRawText())}: expected {n} integers [begin, end].");
        return values.ToArray();
    }

    static string Clip(string s) => s.Length <= 80 ? s : s[..80] + "…";

    /// <summary>The data section must be tiled exactly: the spec forbids holes (polyglot files) and overlaps.</summary>
    static void CheckLayout(string path, List<SafeTensorsEntry> entries, long dataBytes)
    {
        foreach (var e in entries)
        {
            long count = 1;
            foreach (var d in e.Shape)
                if (d != 0 && count > long.MaxValue / d / e.Width)
                    throw new RlhfException($"{path}: tensor '{e.Name}' has shape [{e.ShapeText}], too large to exist.");
                else count *= d;
            if (e.End < e.Begin)
                throw new RlhfException($"{path}: tensor '{e.Name}' has data_offsets [{e.Begin}, {e.End}] that end before they begin.");
            if (e.End - e.Begin != count * e.Width)
                throw new RlhfException($"{path}: tensor '{e.Name}' ({e.Dtype} [{e.ShapeText}]) needs {count * e.Width} bytes but its data_offsets [{e.Begin}, {e.End}] span {e.End - e.Begin}.");
        }
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expected = 0;
        foreach (var e in entries)
        {
            if (e.Begin != expected)
                throw new RlhfException(e.Begin < expected
                    ? $"{path}: tensor '{e.Name}' has data_offsets [{e.Begin}, {e.End}] that overlap the tensor before it (which ends at {expected})."
                    : $"{path}: tensor '{e.Name}' has data_offsets [{e.Begin}, {e.End}] that leave a hole after byte {expected} of the data.");
            expected = e.End;
        }
        if (expected > dataBytes)
            throw new RlhfException($"{path}: the tensors need {expected} bytes of data but the file holds {dataBytes} after its header: truncated.");
        if (expected < dataBytes)
            throw new RlhfException($"{path}: the file holds {dataBytes - expected} bytes after its last tensor that no tensor covers.");
    }

    static bool Known(string dtype) => dtype is "F32" or "F16" or "BF16";

    internal static int WidthOf(string dtype) => dtype switch { "F32" => 4, "F16" or "BF16" => 2, _ => throw new ArgumentException(dtype) };

    internal static ScalarType ScalarTypeOf(string dtype) => dtype switch
    {
        "F32" => ScalarType.Float32, "F16" => ScalarType.Float16, "BF16" => ScalarType.BFloat16,
        _ => throw new ArgumentException(dtype),
    };

    /// <summary>The safetensors dtype name of a torch element type we store.</summary>
    public static string NameOf(ScalarType t) => t switch
    {
        ScalarType.Float32 => "F32", ScalarType.Float16 => "F16", ScalarType.BFloat16 => "BF16",
        _ => throw new ArgumentException($"safetensors files are written as F32, F16 or BF16, not {t}"),
    };
}
