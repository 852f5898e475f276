using System.Globalization;
using RlhfSharp.Models;
using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// The memory a model will take (weights in their dtype, plus the KV cache of the batch and length asked for)
/// against the memory the process can still get (the cgroup limit of a container, else the kernel's MemAvailable),
/// checked before a byte of the weights is read: a model that cannot fit stops with both numbers instead of being
/// killed by the kernel half-way through loading.
/// </summary>
public static class MemoryBudget
{
    /// <summary>Bytes of one element of a float dtype.</summary>
    public static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => 8, ScalarType.Float32 => 4, ScalarType.BFloat16 or ScalarType.Float16 => 2,
        _ => throw new ArgumentException($"models are held as float32, bfloat16 or float16, not {dtype}"),
    };

    /// <summary>Bytes of the weights of a causal LM, or of a score model with <paramref name="scoreHead"/>.</summary>
    public static long WeightBytes(TransformerConfig c, ScalarType dtype, bool scoreHead)
    {
        long parameters = c.ParameterCount();
        if (scoreHead) parameters += (long)c.HeadWidth * c.NumLabels - c.LmHeadParameters;
        return parameters * ElementSize(dtype);
    }

    /// <summary>Bytes of a KV cache for <paramref name="batch"/> sequences of <paramref name="tokens"/> positions.</summary>
    public static long KvCacheBytes(TransformerConfig c, ScalarType dtype, int batch, int tokens) => c.Family == ModelFamily.Rwkv
        ? (2L * c.HiddenSize * ElementSize(dtype) + 3L * c.AttentionHiddenSize * 4) * c.NumLayers * batch // RWKV's state: any length
        : 2L * c.NumLayers * batch * c.NumKvHeads * c.HeadDim * tokens * ElementSize(dtype);

    /// <summary>
    /// Refuses a model that will not fit, before it is built. <paramref name="kvCache"/> is the generation the caller
    /// will run (batch, prompt + new tokens), if any.
    /// </summary>
    public static void Check(TransformerConfig c, ScalarType dtype, bool scoreHead, string source, (int Batch, int Tokens)? kvCache = null)
    {
        var (available, from) = Available();
        if (available is long bytes) Check(c, dtype, scoreHead, source, kvCache, bytes, from);
    }

    /// <summary>The check against a given number of available bytes (<paramref name="from"/> says where it came from).</summary>
    public static void Check(TransformerConfig c, ScalarType dtype, bool scoreHead, string source, (int Batch, int Tokens)? kvCache, long available, string from)
    {
        long weights = WeightBytes(c, dtype, scoreHead);
        long cache = kvCache is var (b, t) ? KvCacheBytes(c, dtype, b, t) : 0;
        long needed = weights + cache;
        if (needed <= available) return;
        long parameters = weights / ElementSize(dtype);
        string cacheText = cache > 0 ? $" + a {Gb(cache)} KV cache for {kvCache!.Value.Batch} × {kvCache.Value.Tokens} tokens" : "";
        string advice = dtype == ScalarType.Float32
            ? "load it in bfloat16 (--dtype bf16, or \"dtype\": \"bf16\" for a frozen model in a recipe) to halve the weights, train LoRA adapters instead of every weight, or use a machine with more memory"
            : "train LoRA adapters instead of every weight, shorten the batch or length, or use a machine with more memory";
        throw new RlhfException($"{source}: the model needs {Gb(needed)} ({parameters:N0} parameters × {ElementSize(dtype)} bytes in {DtypeName(dtype)}{cacheText}) " +
                                $"but only {Gb(available)} is available ({from}); {advice}.");
    }

    static string Gb(long bytes) => $"{bytes / 1e9:0.00} GB";

    static string DtypeName(ScalarType t) => t switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", ScalarType.Float64 => "float64", _ => "float32" };

    /// <summary>
    /// Bytes this process can still allocate: the smaller of the cgroup's room (v2 <c>memory.max</c> − working set,
    /// v1 <c>memory.limit_in_bytes</c> − usage; the working set leaves out reclaimable page cache, as container
    /// runtimes count it) and <c>MemAvailable</c>. Null where neither is known (not Linux).
    /// </summary>
    public static (long? Bytes, string From) Available()
    {
        long? memAvailable = null;
        try { memAvailable = MemAvailable(File.ReadAllText("/proc/meminfo")); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        long? cgroup = null;
        try { cgroup = CgroupRoom("/sys/fs/cgroup"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        if (cgroup is long c && (memAvailable is null || c < memAvailable)) return (c, "the cgroup memory limit minus what the container uses");
        return memAvailable is long m ? (m, "MemAvailable in /proc/meminfo") : (null, "unknown");
    }

    /// <summary>MemAvailable of a <c>/proc/meminfo</c> text, in bytes.</summary>
    public static long? MemAvailable(string meminfo)
    {
        foreach (var line in meminfo.Split('\n'))
            if (line.StartsWith("MemAvailable:"))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long kb)) return kb * 1024;
            }
        return null;
    }

    /// <summary>Room left under the cgroup memory limit mounted at <paramref name="root"/>, or null when unlimited.</summary>
    public static long? CgroupRoom(string root)
    {
        string v2 = Path.Combine(root, "memory.max"), v1 = Path.Combine(root, "memory", "memory.limit_in_bytes");
        if (File.Exists(v2))
        {
            string limit = File.ReadAllText(v2).Trim();
            if (limit == "max" || !long.TryParse(limit, CultureInfo.InvariantCulture, out long max)) return null;
            long used = ReadLong(Path.Combine(root, "memory.current")) ?? 0;
            long inactiveFile = Stat(Path.Combine(root, "memory.stat"), "inactive_file") ?? 0;
            return Math.Max(0, max - Math.Max(0, used - inactiveFile));
        }
        if (File.Exists(v1))
        {
            long? max = ReadLong(v1);
            if (max is null || max >= long.MaxValue / 2) return null; // v1 writes "unlimited" as a huge page-aligned number
            long used = ReadLong(Path.Combine(root, "memory", "memory.usage_in_bytes")) ?? 0;
            long inactiveFile = Stat(Path.Combine(root, "memory", "memory.stat"), "total_inactive_file") ?? 0;
            return Math.Max(0, max.Value - Math.Max(0, used - inactiveFile));
        }
        return null;
    }

    static long? ReadLong(string path) =>
        File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture, out long v) ? v : null;

    static long? Stat(string path, string key)
    {
        if (!File.Exists(path)) return null;
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ');
            if (parts.Length == 2 && parts[0] == key && long.TryParse(parts[1], CultureInfo.InvariantCulture, out long v)) return v;
        }
        return null;
    }
}
