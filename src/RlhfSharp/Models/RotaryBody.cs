using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// The body of GPT-NeoX / Pythia (modeling_gpt_neox.py GPTNeoXModel) and GPT-J (modeling_gptj.py GPTJModel): token
/// embedding, LayerNorm blocks with partial rotary attention, final LayerNorm. They differ in the rotary layout
/// (rotate_half vs interleaved pairs), the q/k/v fusion (per head vs separate) and the block wiring, all chosen here.
/// </summary>
public sealed class RotaryBody : DecoderBody, IDropoutHost
{
#pragma warning disable IDE1006
    public readonly Embedding embed_tokens;
    public readonly ModuleList<ResidualBlock> layers;
    public readonly LayerNorm norm;
#pragma warning restore IDE1006
    readonly PartialRotary rotary;

    public override Embedding Embeddings => embed_tokens;

    /// <summary>Only <see cref="Dropouts.Embedding"/> is read here: GPT-NeoX's emb_dropout (hidden_dropout), GPT-J's drop (embd_pdrop).</summary>
    public Dropouts Dropout { get; set; }

    public RotaryBody(TransformerConfig c, ScalarType? dtype = null) : base(nameof(RotaryBody), c)
    {
        if (c.Family is not (ModelFamily.Neox or ModelFamily.GptJ)) throw new ArgumentException($"RotaryBody builds gpt_neox and gptj, not {c.ModelType}");
        bool gptj = c.Family == ModelFamily.GptJ;
        rotary = new PartialRotary(c.RotaryDims ?? c.HeadDim, c.RopeTheta, gptj ? PartialRotary.Layout.Interleaved : PartialRotary.Layout.RotateHalf);
        var wiring = gptj ? ResidualWiring.ParallelOneNorm : c.ParallelResidual ? ResidualWiring.Parallel : ResidualWiring.Sequential;
        var layout = gptj ? FusedQkvAttention.QkvLayout.Blocks : FusedQkvAttention.QkvLayout.PerHead;
        embed_tokens = LayerInit.Embedding(c.VocabSize, c.HiddenSize, dtype);
        layers = new ModuleList<ResidualBlock>(Enumerable.Range(0, c.NumLayers).Select(i => new ResidualBlock(c, i, wiring, layout, rotary, dtype)).ToArray());
        norm = nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype);
        Dropout = c.Dropout;
        RegisterComponents();
    }

    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        KvCache? cache = null, List<Tensor>? hiddenStates = null)
    {
        var (t, past, device) = NewTokens(inputIds, cache);
        positionIds ??= CountedPositions(past, t, device);
        var x = Dropouts.Apply(embed_tokens.forward(inputIds), Dropout.Embedding, training);
        var angles = rotary.Angles(positionIds, x.dtype);
        var mask = LayerMask(attentionMask, cache, past, t, x.dtype, device);
        x = ResidualBlock.RunAll(layers, x, angles, mask, cache, hiddenStates, Checkpointing(cache));
        x = norm.forward(x);
        hiddenStates?.Add(x);
        return x;
    }
}
