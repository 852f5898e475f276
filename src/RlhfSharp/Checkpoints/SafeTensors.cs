using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data).
/// Written by hand rather than through TorchSharp.PyBridge because HF transformers refuses files whose
/// <c>__metadata__.format</c> is not "pt", and we need F16/BF16 decoding and atomic writes under our control.
/// Tensors load as float32 on the CPU; the caller casts and moves them.
/// </summary>
public static class SafeTensors
{
    /// <summary>Reads every tensor of a file. Errors name the file and the tensor.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        if (!File.Exists(path)) throw new RlhfException($"{path}: file not found.");
        using var stream = File.OpenRead(path);
        Span<byte> lenBytes = stackalloc byte[8];
        if (stream.Read(lenBytes) != 8) throw new RlhfException($"{path}: too short to be a safetensors file.");
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > (ulong)stream.Length - 8 || headerLen > 100_000_000)
            throw new RlhfException($"{path}: header length {headerLen} does not fit the file ({stream.Length} bytes): not a safetensors file.");
        var headerBytes = new byte[headerLen];
        stream.ReadExactly(headerBytes);
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes) as JsonObject ?? throw new RlhfException($"{path}: header is not a JSON object."); }
        catch (JsonException e) { throw new RlhfException($"{path}: header is not valid JSON ({e.Message})."); }

        long dataStart = 8 + (long)headerLen;
        var result = new Dictionary<string, Tensor>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            var info = node as JsonObject ?? throw new RlhfException($"{path}: entry '{name}' is not an object.");
            string dtype = info["dtype"]?.GetValue<string>() ?? throw new RlhfException($"{path}: '{name}' has no dtype.");
            long[] shape = (info["shape"] as JsonArray)?.Select(s => s!.GetValue<long>()).ToArray() ?? throw new RlhfException($"{path}: '{name}' has no shape.");
            var offsets = info["data_offsets"] as JsonArray ?? throw new RlhfException($"{path}: '{name}' has no data_offsets.");
            long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
            long count = shape.Aggregate(1L, (a, b) => a * b);
            int width = dtype switch
            {
                "F32" => 4, "F16" or "BF16" => 2,
                _ => throw new RlhfException($"{path}: tensor '{name}' has dtype {dtype}; supported: F32, F16, BF16."),
            };
            if (end - begin != count * width || dataStart + end > stream.Length)
                throw new RlhfException($"{path}: tensor '{name}' ({dtype} {string.Join("x", shape)}) has data_offsets [{begin}, {end}] that do not fit its shape or the file.");
            var raw = new byte[end - begin];
            stream.Position = dataStart + begin;
            stream.ReadExactly(raw);
            result[name] = tensor(Decode(raw, dtype, count), shape);
        }
        return result;
    }

    static float[] Decode(byte[] raw, string dtype, long count)
    {
        var values = new float[count];
        switch (dtype)
        {
            case "F32":
                MemoryMarshal.Cast<byte, float>(raw).CopyTo(values);
                break;
            case "BF16":
                var bf = MemoryMarshal.Cast<byte, ushort>(raw);
                for (int i = 0; i < values.Length; i++) values[i] = BitConverter.Int32BitsToSingle(bf[i] << 16);
                break;
            case "F16":
                var h = MemoryMarshal.Cast<byte, Half>(raw);
                for (int i = 0; i < values.Length; i++) values[i] = (float)h[i];
                break;
        }
        return values;
    }

    /// <summary>Writes tensors (in the given order) as F32 or BF16 with HF's <c>{"format": "pt"}</c> metadata.</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, bool bf16 = false)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            using var cpu = t.detach().to(float32).cpu().contiguous();
            float[] values = cpu.data<float>().ToArray();
            byte[] bytes = bf16 ? EncodeBf16(values) : MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
            header[name] = new JsonObject
            {
                ["dtype"] = bf16 ? "BF16" : "F32",
                ["shape"] = new JsonArray(t.shape.Select(s => (JsonNode)s).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes.Length),
            };
            offset += bytes.Length;
            blobs.Add(bytes);
        }
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (headerBytes.Length + 7) / 8 * 8; // the spec allows space padding; 8-byte alignment helps mmap readers
        using var stream = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        stream.Write(len);
        stream.Write(headerBytes);
        for (int i = headerBytes.Length; i < padded; i++) stream.WriteByte((byte)' ');
        foreach (var b in blobs) stream.Write(b);
        stream.Flush(flushToDisk: true);
    }

    static byte[] EncodeBf16(float[] values)
    {
        var bytes = new byte[values.Length * 2];
        var dst = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
        for (int i = 0; i < values.Length; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(values[i]);
            if (float.IsNaN(values[i])) { dst[i] = 0x7FC0; continue; }
            bits += 0x7FFF + ((bits >> 16) & 1); // round to nearest even, as torch does
            dst[i] = (ushort)(bits >> 16);
        }
        return bytes;
    }
}
