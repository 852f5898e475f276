using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.Opt;

/// <summary>
/// The body of OPT (modeling_opt.py OPTDecoder): token embedding (optionally projected up), learned positions read at
/// row p + 2 with p counted from the attention mask, pre- or post-LN blocks, optional final LayerNorm and projection down.
/// </summary>
public sealed class OptModel : DecoderBody, IDropoutHost
{
#pragma warning disable IDE1006
    public readonly Embedding embed_tokens;    // [vocab, word_embed_proj_dim]
    public readonly Embedding embed_positions; // [max_position_embeddings + 2, hidden]
    public readonly Linear? project_in;        // word_embed_proj_dim → hidden, no bias
    public readonly ModuleList<ResidualBlock> layers;
    public readonly LayerNorm? norm;
    public readonly Linear? project_out;       // hidden → word_embed_proj_dim, no bias
#pragma warning restore IDE1006

    public override Embedding Embeddings => embed_tokens;
    public override int OutputSize => Config.OptProjectionDim;

    /// <summary>Only <see cref="Dropouts.Layer"/> is read here: OPT's layerdrop (the blocks apply the rest).</summary>
    public Dropouts Dropout { get; set; }

    public OptModel(TransformerConfig c, ScalarType? dtype = null) : base(nameof(OptModel), c)
    {
        int p = c.OptProjectionDim;
        embed_tokens = LayerInit.Embedding(c.VocabSize, p, dtype);
        embed_positions = LayerInit.Embedding(c.MaxPositions + TransformerConfig.OptPositionOffset, c.HiddenSize, dtype);
        if (c.WordEmbedProjDim is not null)
        {
            project_in = LayerInit.Linear(p, c.HiddenSize, hasBias: false, dtype);
            project_out = LayerInit.Linear(c.HiddenSize, p, hasBias: false, dtype);
        }
        var wiring = c.LayerNormBefore ? ResidualWiring.Sequential : ResidualWiring.PostNorm;
        layers = new ModuleList<ResidualBlock>(Enumerable.Range(0, c.NumLayers)
            .Select(i => new ResidualBlock(c, i, wiring, FusedQkvAttention.QkvLayout.Blocks, null, dtype)).ToArray());
        if (c.OptFinalNorm) norm = nn.LayerNorm(c.HiddenSize, c.NormEps, dtype: dtype);
        Dropout = c.Dropout;
        RegisterComponents();
    }

    /// <inheritdoc/>
    /// <remarks>
    /// OPT has no position_ids input in transformers 4.44: positions always come from the mask (cumsum(mask)·mask − 1, so
    /// real tokens count from 0 in every row and pads read row 1), and <paramref name="positionIds"/> is ignored.
    /// </remarks>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null,
        KvCache? cache = null, List<Tensor>? hiddenStates = null)
    {
        var (t, past, device) = NewTokens(inputIds, cache);
        Tensor positions;
        if (attentionMask is null) positions = CountedPositions(past, t, device);
        else
        {
            var m = attentionMask.to(int64);
            positions = (m.cumsum(1) * m - 1).narrow(1, past, t); // the new tokens' tail of the positions of the whole mask
        }
        var x = embed_tokens.forward(inputIds);
        if (project_in is not null) x = project_in.forward(x);
        x = x + embed_positions.forward(positions + TransformerConfig.OptPositionOffset);
        var mask = LayerMask(attentionMask, cache, past, t, x.dtype, device);
        x = ResidualBlock.RunAll(layers, x, null, mask, cache, hiddenStates, Checkpointing(cache), training ? Dropout.Layer : 0);
        if (norm is not null) x = norm.forward(x);
        if (project_out is not null) x = project_out.forward(x);
        hiddenStates?.Add(x);
        return x;
    }
}
