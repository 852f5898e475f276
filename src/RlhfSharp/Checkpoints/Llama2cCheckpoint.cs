using System.Runtime.InteropServices;
using RlhfSharp.Models;
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

    public static (TransformerConfig Config, Dictionary<string, Tensor> Weights) Read(string path)
    {
        if (!File.Exists(path)) throw new RlhfException($"{path}: file not found.");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 28) throw new RlhfException($"{path}: too short for a llama2.c checkpoint header.");
        var ints = MemoryMarshal.Cast<byte, int>(bytes.AsSpan(0, Math.Min(bytes.Length, 256)));
        bool v1 = (uint)ints[0] == Magic;
        if (v1 && ints[1] != 1) throw new RlhfException($"{path}: llama2.c export version {ints[1]} is not supported (supported: legacy and version 1 float32).");
        int h = v1 ? 2 : 0;
        int dim = ints[h], hidden = ints[h + 1], layers = ints[h + 2], heads = ints[h + 3], kvHeads = ints[h + 4], vocab = ints[h + 5], seqLen = ints[h + 6];
        bool shared = v1 ? bytes[36] != 0 : vocab > 0;
        vocab = Math.Abs(vocab);
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seqLen <= 0 || dim % heads != 0 || heads % kvHeads != 0)
            throw new RlhfException($"{path}: header (dim={dim}, hidden_dim={hidden}, n_layers={layers}, n_heads={heads}, n_kv_heads={kvHeads}, vocab_size={vocab}, seq_len={seqLen}) is not a valid llama2.c checkpoint.");
        int headDim = dim / heads, kvDim = kvHeads * headDim;

        float[] floats = MemoryMarshal.Cast<byte, float>(bytes.AsSpan(v1 ? 256 : 28)).ToArray();
        long offset = 0;
        Tensor Take(params long[] shape)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            if (offset + n > floats.Length)
                throw new RlhfException($"{path}: file ends after {offset} floats, the header (dim={dim}, n_layers={layers}, vocab_size={vocab}) needs more: truncated or not a llama2.c checkpoint.");
            var t = tensor(floats.AsSpan((int)offset, (int)n).ToArray(), shape);
            offset += n;
            return t;
        }

        Tensor emb, rmsFinal; Tensor[] rmsAtt, rmsFfn, wq, wk, wv, wo, w1, w2, w3;
        Tensor[] PerLayer(params long[] shape) => Enumerable.Range(0, layers).Select(_ => Take(shape)).ToArray();
        if (v1)
        {
            rmsAtt = PerLayer(dim); rmsFfn = PerLayer(dim); rmsFinal = Take(dim); emb = Take(vocab, dim);
            wq = PerLayer(dim, dim); wk = PerLayer(kvDim, dim); wv = PerLayer(kvDim, dim); wo = PerLayer(dim, dim);
            w1 = PerLayer(hidden, dim); w2 = PerLayer(dim, hidden); w3 = PerLayer(hidden, dim);
        }
        else
        {
            emb = Take(vocab, dim); rmsAtt = PerLayer(dim);
            wq = PerLayer(dim, dim); wk = PerLayer(kvDim, dim); wv = PerLayer(kvDim, dim); wo = PerLayer(dim, dim);
            rmsFfn = PerLayer(dim); w1 = PerLayer(hidden, dim); w2 = PerLayer(dim, hidden); w3 = PerLayer(hidden, dim);
            rmsFinal = Take(dim);
            offset += 2L * seqLen * headDim / 2; // freq_cis_real and freq_cis_imag: RoPE tables we recompute
        }
        Tensor? wcls = shared ? null : Take(vocab, dim);
        if (offset != floats.Length)
            throw new RlhfException($"{path}: {floats.Length - offset} floats left over after the weights the header describes: not a llama2.c checkpoint of this shape.");

        var config = new TransformerConfig
        {
            ModelType = "llama", VocabSize = vocab, HiddenSize = dim, IntermediateSize = hidden, NumLayers = layers,
            NumHeads = heads, NumKvHeads = kvHeads, MaxPositions = seqLen, NormEps = 1e-5, RopeTheta = 10000.0,
            TieWordEmbeddings = shared, BosTokenId = 1, EosTokenIds = [2], HiddenAct = "silu",
        };
        var w = new Dictionary<string, Tensor> { ["model.embed_tokens.weight"] = emb, ["model.norm.weight"] = rmsFinal };
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            w[p + "input_layernorm.weight"] = rmsAtt[i];
            w[p + "post_attention_layernorm.weight"] = rmsFfn[i];
            w[p + "self_attn.q_proj.weight"] = ToRotateHalf(wq[i], heads);
            w[p + "self_attn.k_proj.weight"] = ToRotateHalf(wk[i], kvHeads);
            w[p + "self_attn.v_proj.weight"] = wv[i];
            w[p + "self_attn.o_proj.weight"] = wo[i];
            w[p + "mlp.gate_proj.weight"] = w1[i];
            w[p + "mlp.down_proj.weight"] = w2[i];
            w[p + "mlp.up_proj.weight"] = w3[i];
        }
        if (wcls is not null) w["lm_head.weight"] = wcls;
        return (config, w);
    }

    /// <summary>Rows of each head go from pairs (0,1),(2,3),… to halves (0,2,4,…|1,3,5,…).</summary>
    static Tensor ToRotateHalf(Tensor w, int heads)
    {
        long rows = w.shape[0], cols = w.shape[1];
        return w.view(heads, rows / heads / 2, 2, cols).transpose(1, 2).reshape(rows, cols).contiguous();
    }

    public static CausalLM LoadCausalLM(string path, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var (config, weights) = Read(path);
        return HuggingFaceCheckpoint.Build(new CausalLM(config), config, weights, scoreHead: false, path, dtype, device, allowMissingHead: false);
    }
}
