using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// A model's dropout probabilities by where transformers v4.44 applies them (read per family from config.json by
/// <see cref="TransformerConfig"/> and <see cref="T5.T5Config"/>; the keys and modeling files are listed in
/// docs/MODELS.md). Applied only in training mode (<c>module.training</c>), never in eval mode (generation, references,
/// reward scoring); a probability of 0 adds no op at all, so a model without dropout computes exactly what it did before.
/// </summary>
public sealed record Dropouts
{
    /// <summary>On the input embeddings before the first layer (GPT-2/GPT-J <c>embd_pdrop</c>, GPT-NeoX <c>hidden_dropout</c> as <c>emb_dropout</c>, T5 <c>dropout_rate</c>).</summary>
    public double Embedding { get; init; }
    /// <summary>On the attention probabilities (softmax output), before they weight the values.</summary>
    public double Attention { get; init; }
    /// <summary>On the attention block's and the MLP's outputs before each is added to the residual stream.</summary>
    public double Residual { get; init; }
    /// <summary>Inside the MLP, on the activation before the down projection (T5's <c>DenseReluDense</c> dropout).</summary>
    public double Activation { get; init; }
    /// <summary>
    /// LayerDrop (Fan et al. 2019), OPT's <c>layerdrop</c>: in training each decoder layer is skipped whole with this
    /// probability (OPTDecoder.forward draws <c>torch.rand([])</c> per layer).
    /// </summary>
    public double Layer { get; init; }
    /// <summary>
    /// A key the config carries but transformers v4.44 never applies (OPT's <c>activation_dropout</c>, Phi-3's
    /// <c>embd_pdrop</c>, whose <c>embed_dropout</c> module is built and not called): kept so a save writes it back.
    /// </summary>
    public double Inert { get; init; }

    /// <summary>No dropout anywhere.</summary>
    public static readonly Dropouts None = new();

    /// <summary>True when any site drops something in training.</summary>
    public bool Any => Embedding > 0 || Attention > 0 || Residual > 0 || Activation > 0 || Layer > 0;

    /// <summary>
    /// Inverted dropout (Srivastava et al. 2014, as <c>torch.nn.functional.dropout</c>): in training each element is
    /// zeroed with probability <paramref name="p"/> and the rest scaled by 1/(1 − p), so the expectation is unchanged;
    /// the identity otherwise. The mask comes from the global generator, which <see cref="LayerCheckpoint"/> replays.
    /// </summary>
    public static Tensor Apply(Tensor x, double p, bool training) => p > 0 && training ? nn.functional.dropout(x, p, training: true) : x;

    /// <summary>The attention-probability dropout to hand scaled_dot_product_attention: <see cref="Attention"/> in training, else 0.</summary>
    public double AttentionIn(bool training) => training ? Attention : 0.0;

    /// <summary>Refuses a probability outside [0, 1], naming the key.</summary>
    internal static double Checked(double p, string source, string key) =>
        p is >= 0 and <= 1 ? p : throw new RlhfException($"{source}: {key} must be a probability in [0, 1], got {p}.");
}

/// <summary>A module that applies model dropout: <see cref="ModelDropout.Disable"/> turns it off (TRL's <c>disable_dropout_in_model</c>).</summary>
public interface IDropoutHost
{
    /// <summary>The probabilities this module applies.</summary>
    Dropouts Dropout { get; set; }
}

/// <summary>Switches a model's own dropout off, as TRL's <c>disable_dropout_in_model</c> (trl/trainer/utils.py) sets every <c>nn.Dropout</c>'s p to 0.</summary>
public static class ModelDropout
{
    /// <summary>Sets every dropout of <paramref name="model"/>'s modules to 0 (the model's own; LoRA's is <see cref="Lora.LoraModel.DisableDropout"/>).</summary>
    public static void Disable(nn.Module model)
    {
        if (model is IDropoutHost self) self.Dropout = Dropouts.None;
        foreach (var m in model.modules()) if (m is IDropoutHost host) host.Dropout = Dropouts.None;
    }

    /// <summary>Gives <paramref name="copy"/> (a clone, the same modules in the same order) the dropout of <paramref name="model"/>'s modules, switched off ones included.</summary>
    public static void CopyTo(nn.Module model, nn.Module copy)
    {
        foreach (var (from, to) in model.modules().OfType<IDropoutHost>().Zip(copy.modules().OfType<IDropoutHost>())) to.Dropout = from.Dropout;
    }

    /// <summary>True when some module of <paramref name="model"/> still applies dropout in training.</summary>
    public static bool Any(nn.Module model) =>
        (model is IDropoutHost self && self.Dropout.Any) || model.modules().OfType<IDropoutHost>().Any(h => h.Dropout.Any);
}
