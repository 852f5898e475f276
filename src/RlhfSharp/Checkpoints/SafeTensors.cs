using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// The safetensors format (8-byte little-endian header length, JSON header, raw little-endian data).
/// Written by hand rather than through TorchSharp.PyBridge because HF transformers refuses files whose
/// <c>__metadata__.format</c> is not "pt", and we need the header validated (<see cref="SafeTensorsHeader"/>), dtype
/// conversion and streaming under our control. Data moves in chunks of at most <see cref="ChunkBytes"/>: straight
/// from the file into a tensor's storage when the dtypes match, through one chunk-sized staging tensor when they
/// do not, so no whole tensor is ever copied through managed memory or held twice.
/// </summary>
public static class SafeTensors
{
    /// <summary>The largest piece of a tensor read or written at once (a bounded staging buffer, not a tensor copy).</summary>
    public const int ChunkBytes = 4 << 20;

    /// <summary>Reads every tensor of a file as float32 on the CPU. Errors name the file and the tensor.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        var header = SafeTensorsHeader.Read(path);
        var result = new Dictionary<string, Tensor>();
        using var file = File.OpenHandle(path);
        foreach (var e in header.Entries)
        {
            var t = empty(e.Shape, float32);
            CopyInto(file, header, e, t, transpose: false);
            result[e.Name] = t;
        }
        return result;
    }

    /// <summary>
    /// Copies one tensor of the file into <paramref name="destination"/> (a contiguous CPU tensor of any float dtype
    /// with the entry's element count; with <paramref name="transpose"/>, a 2-D tensor shaped as the entry's
    /// transpose), converting the dtype chunk by chunk. Rejects NaN and ±Inf, naming the tensor.
    /// </summary>
    public static void CopyInto(SafeFileHandle file, SafeTensorsHeader header, SafeTensorsEntry e, Tensor destination, bool transpose)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long count = e.Count;
        if (count == 0) return;
        long fileOffset = header.DataStart + e.Begin;
        var source = e.ScalarType;
        PagePopulate.ForWrite(destination);
        if (transpose)
        {
            // GPT-2's Conv1D [in, out] into our [out, in]: whole source rows per chunk, written as destination columns.
            long rows = e.Shape[0], cols = count / rows;
            long rowsPerChunk = Math.Max(1, ChunkBytes / (cols * e.Width));
            var staging = empty(Math.Min(rows, rowsPerChunk) * cols, source);
            for (long r = 0; r < rows; r += rowsPerChunk)
            {
                long n = Math.Min(rowsPerChunk, rows - r);
                var chunk = staging.narrow(0, 0, n * cols);
                Read(file, header, e, fileOffset + r * cols * e.Width, chunk);
                destination.narrow(1, r, n).copy_(chunk.view(n, cols).t());
            }
            CheckFinite(header, e, destination);
            return;
        }
        var flat = destination.view(-1);
        long perChunk = ChunkBytes / e.Width;
        bool direct = destination.dtype == source;
        var buffer = direct ? null : empty(Math.Min(count, perChunk), source);
        for (long start = 0; start < count; start += perChunk)
        {
            using var step = NewDisposeScope();
            long n = Math.Min(perChunk, count - start);
            var target = flat.narrow(0, start, n);
            if (direct) Read(file, header, e, fileOffset + start * e.Width, target);
            else
            {
                var chunk = buffer!.narrow(0, 0, n);
                Read(file, header, e, fileOffset + start * e.Width, chunk);
                target.copy_(chunk);
            }
            CheckFinite(header, e, target);
        }
    }

    /// <summary>
    /// The whole file as one private (copy-on-write) memory map, read as elements of <paramref name="dtype"/> (TorchSharp
    /// has no dtype view, so each dtype gets its own map of the file; a map costs address space, not memory), or null
    /// where it cannot be mapped. Tensors made from it by <see cref="TryShare"/> keep the mapping alive; writing to them
    /// copies only the pages written, and the file never changes. This is how <c>transformers</c> loads safetensors
    /// (safetensors' <c>safe_open</c> maps the file; accelerate's <c>set_module_tensor_to_device</c> keeps the mapped
    /// tensor as the parameter).
    /// </summary>
    public static Tensor? Map(SafeTensorsHeader header, ScalarType dtype)
    {
        long elements = new FileInfo(header.Path).Length / ElementSize(dtype);
        try { return from_file(header.Path, shared: false, size: elements, dtype: dtype); }
        catch (Exception e) when (e is ExternalException or IOException) { return null; } // a file system without mmap: read instead
    }

    static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    /// <summary>
    /// Makes <paramref name="parameter"/> a view of its bytes in the mapped file instead of a copy of them, when the file
    /// holds it in the parameter's dtype and layout at an offset its element size divides: the page cache's pages are
    /// the weights, so the load neither zeroes new memory nor copies into it, and the machine holds the weights once
    /// rather than once in the cache and once in the process. False (nothing changed) when it cannot; then copy.
    /// Rejects NaN and ±Inf, naming the tensor, as <see cref="CopyInto"/> does.
    /// </summary>
    public static bool TryShare(Tensor mapped, SafeTensorsHeader header, SafeTensorsEntry e, Tensor parameter)
    {
        long offset = header.DataStart + e.Begin;
        if (e.Count == 0 || e.ScalarType != parameter.dtype || mapped.dtype != parameter.dtype || parameter.device_type != DeviceType.CPU
            || !parameter.is_contiguous() || !e.Shape.SequenceEqual(parameter.shape) || offset % e.Width != 0 || offset / e.Width + e.Count > mapped.shape[0])
            return false;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var view = mapped.narrow(0, offset / e.Width, e.Count).view(parameter.shape);
        CheckFinite(header, e, view);
        StorageShare.Set(parameter, view);
        return true;
    }

    /// <summary>Fills a contiguous CPU tensor with the file's bytes at <paramref name="offset"/>.</summary>
    static void Read(SafeFileHandle file, SafeTensorsHeader header, SafeTensorsEntry e, long offset, Tensor into)
    {
        var span = into.bytes;
        while (span.Length > 0)
        {
            int got = RandomAccess.Read(file, span, offset);
            if (got <= 0) throw new RlhfException($"{header.Path}: tensor '{e.Name}' ends past the end of the file: truncated.");
            span = span[got..];
            offset += got;
        }
    }

    static void CheckFinite(SafeTensorsHeader header, SafeTensorsEntry e, Tensor values)
    {
        if (FiniteValues.All(values)) return;
        string converted = values.dtype == e.ScalarType ? "" : $" (after conversion from {e.Dtype} to {values.dtype})";
        throw new RlhfException($"{header.Path}: tensor '{e.Name}' holds NaN or infinite values{converted}: the checkpoint is broken.");
    }

    /// <summary>Writes tensors (in the given order) as F32 or BF16 with HF's <c>{"format": "pt"}</c> metadata.</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, bool bf16 = false) =>
        Save(path, tensors, bf16 ? ScalarType.BFloat16 : ScalarType.Float32);

    /// <summary>
    /// Writes tensors (in the given order) in <paramref name="dtype"/> (F32, F16 or BF16) with HF's
    /// <c>{"format": "pt"}</c> metadata. Tensors may be views of any layout and device: each is written chunk by
    /// chunk, so saving never holds a second copy of the weights.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, ScalarType dtype)
    {
        var list = tensors.ToList();
        string dtypeName = SafeTensorsHeader.NameOf(dtype);
        int width = dtype == ScalarType.Float32 ? 4 : 2;
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (name, t) in list)
        {
            long bytes = t.numel() * width;
            header[name] = new JsonObject
            {
                ["dtype"] = dtypeName,
                ["shape"] = new JsonArray(t.shape.Select(s => (JsonNode)s).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (headerBytes.Length + 7) / 8 * 8; // the spec allows space padding; 8-byte alignment helps mmap readers
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
        stream.Write(len);
        stream.Write(headerBytes);
        for (int i = headerBytes.Length; i < padded; i++) stream.WriteByte((byte)' ');
        foreach (var (_, t) in list) WriteData(stream, t, dtype, width);
        stream.Flush(flushToDisk: true);
    }

    static void WriteData(Stream stream, Tensor t, ScalarType dtype, int width)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        if (t.numel() == 0) return;
        var source = t.detach();
        if (source.dim() == 0) source = source.reshape(1);
        bool flat = source.is_contiguous();
        // A contiguous tensor goes in flat pieces; any other layout (a transposed GPT-2 Conv1D view) in whole rows.
        long rows = flat ? source.numel() : source.shape[0];
        long rowElements = flat ? 1 : source.numel() / rows;
        long perChunk = Math.Max(1, ChunkBytes / (rowElements * width));
        var whole = flat ? source.view(-1) : source;
        for (long r = 0; r < rows; r += perChunk)
        {
            using var step = NewDisposeScope();
            long n = Math.Min(perChunk, rows - r);
            var chunk = whole.narrow(0, r, n);
            if (chunk.device_type != DeviceType.CPU) chunk = chunk.cpu();
            // torch's float32 → bfloat16 cast rounds to nearest even (NaN → 0x7FC0), as HF's save_pretrained does.
            chunk = chunk.to(dtype).contiguous();
            stream.Write(chunk.bytes);
        }
    }
}
