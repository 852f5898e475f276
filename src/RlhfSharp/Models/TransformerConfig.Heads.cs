using System.Text.Json.Nodes;

namespace RlhfSharp.Models;

public sealed partial record TransformerConfig
{
    /// <summary>GPT-J's <c>lm_head</c> has a bias (modeling_gptj.py: <c>nn.Linear(n_embd, vocab_size)</c>); every other family's has none.</summary>
    public bool LmHeadBias { get; init; }

    /// <summary>The HF module name of the LM head: GPT-NeoX calls it <c>embed_out</c> (modeling_gpt_neox.py), RWKV <c>head</c> (modeling_rwkv.py), the others <c>lm_head</c>.</summary>
    public string HfLmHead => Family switch { ModelFamily.Neox => "embed_out", ModelFamily.Rwkv => "head", _ => "lm_head" };

    /// <summary>Width of the hidden states the heads read: OPT's <c>word_embed_proj_dim</c> (after <c>project_out</c>), else hidden_size.</summary>
    public int HeadWidth => Family == ModelFamily.Opt ? OptProjectionDim : HiddenSize;

    /// <summary>Parameters of the LM head alone: 0 when tied to the embedding.</summary>
    public long LmHeadParameters => TieWordEmbeddings ? 0 : (long)VocabSize * HeadWidth + (LmHeadBias ? VocabSize : 0);

    /// <summary>
    /// The shape of a family whose every attention head has its own K/V (GPT-NeoX, OPT, GPT-J, BLOOM), from the sizes its
    /// reader took under the family's own config.json keys and defaults (HF's <c>attribute_map</c> and configuration_*.py).
    /// </summary>
    static TransformerConfig MultiHead(string modelType, int vocab, int hidden, int intermediate, int layers, int heads, int positions, double normEps) => new()
    {
        ModelType = modelType, VocabSize = vocab, HiddenSize = hidden, IntermediateSize = intermediate,
        NumLayers = layers, NumHeads = heads, NumKvHeads = heads, MaxPositions = positions, NormEps = normEps,
    };

    /// <summary>The keys every family reads alike: special token ids, the score head's labels and OpenRLHF's reward normalisation.</summary>
    TransformerConfig WithTokensAndLabels(JsonObject j, string source) => this with
    {
        BosTokenId = Int(j, "bos_token_id", source),
        EosTokenIds = Ids(j, "eos_token_id", source),
        PadTokenId = Int(j, "pad_token_id", source),
        NumLabels = Labels(j, source),
        RewardMean = Bool(j, "normalize_reward", source) == true ? Dbl(j, "mean", source) : null,
        RewardStd = Bool(j, "normalize_reward", source) == true ? Dbl(j, "std", source) : null,
    };
}
