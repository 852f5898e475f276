using RlhfSharp.Checkpoints;
using RlhfSharp.Models;
using RlhfSharp.Models.T5;

namespace RlhfSharp.Bench;

/// <summary>The three models of the benchmark (issue item 7). bench/reference/models.py builds the same shapes.</summary>
static class BenchModels
{
    public static CausalLM Create(string name) => name switch
    {
        "stories260k" => Llama2cCheckpoint.LoadCausalLM(Stories260KPath()),
        "gpt2" => new CausalLM(Gpt2Small),
        "llama45m" => new CausalLM(Llama45M),
        "gemma2s" => new CausalLM(Gemma2Small),
        "mixtral-s" => new CausalLM(MixtralSmall),
        "mixtral-dense" => new CausalLM(MixtralDense),
        "pythia160m" => new CausalLM(Pythia160M),
        "opt125m" => new CausalLM(Opt125M),
        _ => throw new ArgumentException($"unknown model '{name}' (stories260k, gpt2, llama45m, gemma2s, mixtral-s, mixtral-dense, pythia160m, opt125m)"),
    };

    /// <summary>GPT-2 small (124M), random weights, tied embeddings.</summary>
    public static readonly TransformerConfig Gpt2Small = new()
    {
        ModelType = "gpt2", VocabSize = 50257, HiddenSize = 768, IntermediateSize = 3072, NumLayers = 12,
        NumHeads = 12, NumKvHeads = 12, MaxPositions = 1024, TieWordEmbeddings = true,
        QkvBias = true, OutputBias = true, MlpBias = true, HiddenAct = "gelu_new",
    };

    /// <summary>A LLaMA shape of 45M parameters: d 512, 4 layers, 8 heads, FFN 1376, vocab 32000, untied head.</summary>
    public static readonly TransformerConfig Llama45M = new()
    {
        ModelType = "llama", VocabSize = 32000, HiddenSize = 512, IntermediateSize = 1376, NumLayers = 4,
        NumHeads = 8, NumKvHeads = 8, MaxPositions = 2048, TieWordEmbeddings = false,
    };

    /// <summary>
    /// A Gemma 2 shape (issue 18): d 512, 4 layers, 8 heads / 4 KV heads of 64, FFN 1376 gelu-tanh, vocab 32000, tied;
    /// four norms per layer, query_pre_attn_scalar 64, attention and final soft-capping 50 and 30, a 4096 window on even layers.
    /// </summary>
    public static readonly TransformerConfig Gemma2Small = new()
    {
        ModelType = "gemma2", VocabSize = 32000, HiddenSize = 512, IntermediateSize = 1376, NumLayers = 4,
        NumHeads = 8, NumKvHeads = 4, ExplicitHeadDim = 64, MaxPositions = 8192, TieWordEmbeddings = true, HiddenAct = "gelu_pytorch_tanh",
        GemmaNorms = true, SandwichNorms = true, QueryPreAttnScalar = 64, AttnLogitSoftcap = 50, FinalLogitSoftcap = 30,
        SlidingWindow = 4096, WindowLayers = WindowPattern.EvenLayers,
    };

    /// <summary>A Mixtral shape (issue 18): d 512, 4 layers, 8 heads / 4 KV heads, 8 experts of FFN 688, top 2, vocab 32000, untied.</summary>
    public static readonly TransformerConfig MixtralSmall = new()
    {
        ModelType = "mixtral", VocabSize = 32000, HiddenSize = 512, IntermediateSize = 688, NumLayers = 4,
        NumHeads = 8, NumKvHeads = 4, MaxPositions = 8192, TieWordEmbeddings = false,
        Moe = new MoeConfig { NumExperts = 8, TopK = 2, NormTopK = true, ExpertSize = 688 },
    };

    /// <summary>The dense model with <see cref="MixtralSmall"/>'s active parameters: one MLP as wide as its two chosen experts (2 × 688).</summary>
    public static readonly TransformerConfig MixtralDense = MixtralSmall with { ModelType = "mistral", IntermediateSize = 1376, Moe = null };

    /// <summary>Pythia-160M's shape (EleutherAI/pythia-160m config.json): GPT-NeoX, d 768, 12 layers, 12 heads, rotary_pct 0.25, parallel residual, untied head.</summary>
    public static readonly TransformerConfig Pythia160M = new()
    {
        ModelType = "gpt_neox", VocabSize = 50304, HiddenSize = 768, IntermediateSize = 3072, NumLayers = 12,
        NumHeads = 12, NumKvHeads = 12, MaxPositions = 2048, TieWordEmbeddings = false, RotaryDims = 16, ParallelResidual = true,
        QkvBias = true, OutputBias = true, MlpBias = true, HiddenAct = "gelu",
    };

    /// <summary>OPT-125M's shape (facebook/opt-125m config.json): d 768, 12 layers, 12 heads, pre-LN, ReLU, learned positions, tied head.</summary>
    public static readonly TransformerConfig Opt125M = new()
    {
        ModelType = "opt", VocabSize = 50272, HiddenSize = 768, IntermediateSize = 3072, NumLayers = 12,
        NumHeads = 12, NumKvHeads = 12, MaxPositions = 2048, TieWordEmbeddings = true,
        QkvBias = true, OutputBias = true, MlpBias = true, HiddenAct = "relu",
    };

    /// <summary>The encoder-decoder shapes (<see cref="Seq2SeqWorkload"/>).</summary>
    public static T5Config T5(string name) => name switch
    {
        "t5small" => T5Small,
        _ => throw new ArgumentException($"unknown encoder-decoder model '{name}' (t5small)"),
    };

    /// <summary>T5-small's shape (google-t5/t5-small config.json): d_model 512, 6 + 6 layers, 8 heads of 64, d_ff 2048,
    /// relu, tied head, vocab 32128, 32 buckets / max distance 128. bench/reference/t5.py T5_CONFIGS["t5small"].</summary>
    public static readonly T5Config T5Small = new()
    {
        VocabSize = 32128, DModel = 512, DKv = 64, DFf = 2048, NumLayers = 6, NumDecoderLayersSet = 6, NumHeads = 8,
        RelativeAttentionNumBuckets = 32, RelativeAttentionMaxDistance = 128, FeedForwardProj = "relu", TieWordEmbeddings = true,
    };

    /// <summary>
    /// FLOPs per trained target token of an encoder-decoder model whose source is as long as its target: 6 per weight
    /// in a matmul (encoder, decoder, the head; not the input lookup or the relative-bias tables) plus attention's
    /// 12·d_inner·T per attention (encoder self, decoder self and cross). bench/reference/t5.py train_flops_per_token.
    /// </summary>
    public static double T5TrainFlopsPerToken(T5Config c, int seq)
    {
        double attn = 4.0 * c.DModel * c.InnerDim, ff = (c.IsGatedAct ? 3.0 : 2.0) * c.DModel * c.DFf;
        double n = c.NumLayers * (attn + ff) + c.NumDecoderLayers * (2 * attn + ff) + (double)c.VocabSize * c.DModel;
        return 6 * n + 12.0 * c.InnerDim * seq * (c.NumLayers + 2 * c.NumDecoderLayers);
    }

    static string Stories260KPath()
    {
        foreach (var p in new[] { Path.Combine(AppContext.BaseDirectory, "models/stories260K/stories260K.bin"), "models/stories260K/stories260K.bin", "../models/stories260K/stories260K.bin" })
            if (File.Exists(p)) return p;
        throw new FileNotFoundException("models/stories260K/stories260K.bin not found");
    }

    /// <summary>
    /// FLOPs per trained token: 6 per weight that takes part in a matmul (not the input embedding lookup, not
    /// GPT-2's position table) plus attention's 12·L·d·T (nanoGPT's estimate_mfu, PaLM appendix B).
    /// </summary>
    public static double TrainFlopsPerToken(TransformerConfig c, int seq)
    {
        double n = c.ParameterCount() - (c.TieWordEmbeddings ? 0 : (long)c.VocabSize * c.HiddenSize)
                   - (c.Family == ModelFamily.Gpt2 ? (long)c.MaxPositions * c.HiddenSize : 0)
                   - (c.Family == ModelFamily.Opt ? (long)(c.MaxPositions + TransformerConfig.OptPositionOffset) * c.HiddenSize : 0);
        if (c.Moe is { } moe) // only the chosen experts compute: count active parameters
            n -= Enumerable.Range(0, c.NumLayers).Count(c.SparseLayer) * (moe.NumExperts - moe.TopK) * 3L * c.HiddenSize * moe.ExpertSize;
        return 6 * n + 12.0 * c.NumLayers * c.NumHeads * c.HeadDim * seq;
    }

    /// <summary>Bytes of weights read to decode one token (every matrix once; one row of each embedding table, ignored).</summary>
    public static double WeightBytesPerToken(TransformerConfig c, int bytesPerScalar = 4)
    {
        long n = c.ParameterCount() - (c.Family == ModelFamily.Gpt2 ? (long)c.MaxPositions * c.HiddenSize : 0)
                 - (c.Family == ModelFamily.Opt ? (long)(c.MaxPositions + TransformerConfig.OptPositionOffset) * c.HiddenSize : 0)
                 - (c.TieWordEmbeddings ? 0 : (long)c.VocabSize * c.HiddenSize);
        return (double)n * bytesPerScalar;
    }
}
