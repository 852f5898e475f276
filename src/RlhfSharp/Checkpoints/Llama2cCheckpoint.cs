using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using RlhfSharp.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Checkpoints;

/// <summary>
/// Karpathy's llama2.c checkpoints: the legacy (version 0) float32 layout of stories260K and the version-1
/// export (magic "ak42"). Weights are returned under HF LLaMA names; wq/wk rows are permuted from llama2.c's
/// interleaved-pair RoPE to HF's rotate_half halves, as HF's convert_llama_weights_to_hf does.
/// </summary>
public static class Llama2cCheckpoint
{
    const uint Magic = 0x616b3432; // "ak42"

    /// <summary>One weight of the file: its HF name, shape, byte offset, and the head count whose rows are permuted (0: none).</summary>
    readonly record struct Entry(string Name, long[] Shape, long Offset, int PermuteHeads)
    {
        public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>The header's config and where each weight lies in the file; reads 256 bytes, checks the file's length.</summary>
    static (TransformerConfig Config, List<Entry> Entries) Layout(string path)
    {
        if (!File.Exists(path)) throw new RlhfException($"{path}: file not found.");
        long length = new FileInfo(path).Length;
        if (length < 28) throw new RlhfException($"{path}: too short for a llama2.c checkpoint header.");
        var head = new byte[(int)Math.Min(length, 256)];
        using (var f = File.OpenRead(path)) f.ReadExactly(head);
        var ints = MemoryMarshal.Cast<byte, int>(head.AsSpan(0, head.Length / 4 * 4));
        bool v1 = (uint)ints[0] == Magic;
        if (v1 && ints[1] != 1) throw new RlhfException($"{path}: llama2.c export version {ints[1]} is not supported (supported: legacy and version 1 float32).");
        if (v1 && length < 256) throw new RlhfException($"{path}: too short for a llama2.c version-1 header.");
        int h = v1 ? 2 : 0;
        int dim = ints[h], hidden = ints[h + 1], layers = ints[h + 2], heads = ints[h + 3], kvHeads = ints[h + 4], vocab = ints[h + 5], seqLen = ints[h + 6];
        bool shared = v1 ? head[36] != 0 : vocab > 0;
        vocab = Math.Abs(vocab);
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seqLen <= 0 || dim % heads != 0 || heads % kvHeads != 0)
            throw new RlhfException($"{path}: header (dim={dim}, hidden_dim={hidden}, n_layers={layers}, n_heads={heads}, n_kv_heads={kvHeads}, vocab_size={vocab}, seq_len={seqLen}) is not a valid llama2.c checkpoint.");
        int headDim = dim / heads, kvDim = kvHeads * headDim;

        var entries = new List<Entry>();
        long offset = v1 ? 256 : 28;
        void Take(string name, int permute, params long[] shape)
        {
            var e = new Entry(name, shape, offset, permute);
            entries.Add(e);
            offset += e.Count * 4;
        }
        string L(int i, string rest) => $"model.layers.{i}.{rest}.weight";
        void PerLayer(string rest, int permute, params long[] shape) { for (int i = 0; i < layers; i++) Take(L(i, rest), permute, shape); }
        if (v1)
        {
            PerLayer("input_layernorm", 0, dim); PerLayer("post_attention_layernorm", 0, dim);
            Take("model.norm.weight", 0, dim); Take("model.embed_tokens.weight", 0, vocab, dim);
            PerLayer("self_attn.q_proj", heads, dim, dim); PerLayer("self_attn.k_proj", kvHeads, kvDim, dim);
            PerLayer("self_attn.v_proj", 0, kvDim, dim); PerLayer("self_attn.o_proj", 0, dim, dim);
            PerLayer("mlp.gate_proj", 0, hidden, dim); PerLayer("mlp.down_proj", 0, dim, hidden); PerLayer("mlp.up_proj", 0, hidden, dim);
        }
        else
        {
            Take("model.embed_tokens.weight", 0, vocab, dim); PerLayer("input_layernorm", 0, dim);
            PerLayer("self_attn.q_proj", heads, dim, dim); PerLayer("self_attn.k_proj", kvHeads, kvDim, dim);
            PerLayer("self_attn.v_proj", 0, kvDim, dim); PerLayer("self_attn.o_proj", 0, dim, dim);
            PerLayer("post_attention_layernorm", 0, dim);
            PerLayer("mlp.gate_proj", 0, hidden, dim); PerLayer("mlp.down_proj", 0, dim, hidden); PerLayer("mlp.up_proj", 0, hidden, dim);
            Take("model.norm.weight", 0, dim);
            offset += 2L * seqLen * headDim / 2 * 4; // freq_cis_real and freq_cis_imag: RoPE tables we recompute
        }
        if (!shared) Take("lm_head.weight", 0, vocab, dim);
        if (offset > length)
            throw new RlhfException($"{path}: file ends after {(length - (v1 ? 256 : 28)) / 4} floats, the header (dim={dim}, n_layers={layers}, vocab_size={vocab}) needs more: truncated or not a llama2.c checkpoint.");
        if (offset != length)
            throw new RlhfException($"{path}: {(length - offset) / 4} floats left over after the weights the header describes: not a llama2.c checkpoint of this shape.");

        var config = new TransformerConfig
        {
            ModelType = "llama", VocabSize = vocab, HiddenSize = dim, IntermediateSize = hidden, NumLayers = layers,
            NumHeads = heads, NumKvHeads = kvHeads, MaxPositions = seqLen, NormEps = 1e-5, RopeTheta = 10000.0,
            TieWordEmbeddings = shared, BosTokenId = 1, EosTokenIds = [2], HiddenAct = "silu",
        };
        return (config, entries);
    }

    /// <summary>Reads one weight as float32 in HF's layout (wq/wk rows permuted to rotate_half).</summary>
    static Tensor ReadEntry(SafeFileHandle file, string path, Entry e)
    {
        var t = empty(e.Shape, ScalarType.Float32);
        var span = t.bytes;
        long at = e.Offset;
        while (span.Length > 0)
        {
            int got = RandomAccess.Read(file, span, at);
            if (got <= 0) throw new RlhfException($"{path}: weight '{e.Name}' ends past the end of the file: truncated.");
            span = span[got..];
            at += got;
        }
        return e.PermuteHeads > 0 ? ToRotateHalf(t, e.PermuteHeads) : t;
    }

    /// <summary>One weight as float32 under its HF name: the exact stored values a LoRA merge adds to in a narrower model.</summary>
    internal static Tensor ReadFloat32(string path, string key)
    {
        var (_, entries) = Layout(path);
        var e = entries.FirstOrDefault(x => x.Name == key);
        if (e.Name is null) throw new RlhfException($"{path}: no weight '{key}' in a llama2.c checkpoint.");
        using var file = File.OpenHandle(path);
        return ReadEntry(file, path, e);
    }

    /// <summary>Every weight under its HF LLaMA name, float32 on the CPU: for tools and tests; loading a model streams instead.</summary>
    public static (TransformerConfig Config, Dictionary<string, Tensor> Weights) Read(string path)
    {
        var (config, entries) = Layout(path);
        using var file = File.OpenHandle(path);
        return (config, entries.ToDictionary(e => e.Name, e => ReadEntry(file, path, e)));
    }

    /// <summary>Rows of each head go from pairs (0,1),(2,3),… to halves (0,2,4,…|1,3,5,…).</summary>
    static Tensor ToRotateHalf(Tensor w, int heads)
    {
        long rows = w.shape[0], cols = w.shape[1];
        return w.view(heads, rows / heads / 2, 2, cols).transpose(1, 2).reshape(rows, cols).contiguous();
    }

    /// <summary>
    /// The model in <paramref name="dtype"/>, filled one weight at a time (the largest weight, the embedding, is the only
    /// float32 staging; no managed copy of the file, no float32 model before a narrower one).
    /// </summary>
    public static CausalLM LoadCausalLM(string path, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var (config, entries) = Layout(path);
        var model = new CausalLM(config, dtype == ScalarType.Float32 ? null : dtype);
        try
        {
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
            var placements = HfWeightMap.Placements(config, scoreHead: false);
            using var file = File.OpenHandle(path);
            using var _ = no_grad();
            foreach (var e in entries)
            {
                using var scope = NewDisposeScope();
                var p = placements[e.Name];
                var param = parameters[p.Ours];
                long rows = p.Rows > 0 ? p.Rows : param.shape[0];
                param.narrow(0, p.RowOffset, rows).copy_(ReadEntry(file, path, e));
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        if (device is not null) model.to(device);
        return model;
    }
}
