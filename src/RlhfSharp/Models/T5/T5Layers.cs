using RlhfSharp.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models.T5;

// The three sub-layers of a T5 block, with HF's module names so parameter keys match (modeling_t5.py T5LayerSelfAttention,
// T5LayerCrossAttention, T5LayerFF). Each is pre-norm with a residual: x + f(layer_norm(x)).
#pragma warning disable IDE1006 // HF parameter names

/// <summary><c>layer.0</c>: self-attention.</summary>
public sealed class T5LayerSelfAttention : nn.Module
{
    public readonly T5Attention SelfAttention;
    public readonly RmsNorm layer_norm;

    public T5LayerSelfAttention(T5Config c, bool hasRelativeAttentionBias, ScalarType? dtype) : base(nameof(T5LayerSelfAttention))
    {
        SelfAttention = new T5Attention(c, hasRelativeAttentionBias, dtype);
        layer_norm = new RmsNorm(c.DModel, c.LayerNormEpsilon, dtype);
        RegisterComponents();
    }
}

/// <summary><c>layer.1</c> of a decoder block: attention over the encoder's output.</summary>
public sealed class T5LayerCrossAttention : nn.Module
{
    public readonly T5Attention EncDecAttention;
    public readonly RmsNorm layer_norm;

    public T5LayerCrossAttention(T5Config c, ScalarType? dtype) : base(nameof(T5LayerCrossAttention))
    {
        EncDecAttention = new T5Attention(c, hasRelativeAttentionBias: false, dtype);
        layer_norm = new RmsNorm(c.DModel, c.LayerNormEpsilon, dtype);
        RegisterComponents();
    }
}

/// <summary>The feed-forward sub-layer: <c>wo(act(wi x))</c> (v1.0 relu), or <c>wo(act(wi_0 x) · wi_1 x)</c> (v1.1 gated-gelu).</summary>
public sealed class T5DenseFF : nn.Module<Tensor, Tensor>, ILoraHost, IDropoutHost
{
    public readonly Linear? wi, wi_0, wi_1;
    public readonly Linear wo;
    readonly string act;
    readonly LoraSlots lora; // adapters attached after loading (T5Lora.Attach)

    /// <summary>Only <see cref="Dropouts.Activation"/> is read here: T5DenseActDense's dropout between the activation and wo.</summary>
    public Dropouts Dropout { get; set; }

    public T5DenseFF(T5Config c, ScalarType? dtype) : base(nameof(T5DenseFF))
    {
        if (c.IsGatedAct)
        {
            wi_0 = nn.Linear(c.DModel, c.DFf, hasBias: false, dtype: dtype);
            wi_1 = nn.Linear(c.DModel, c.DFf, hasBias: false, dtype: dtype);
        }
        else wi = nn.Linear(c.DModel, c.DFf, hasBias: false, dtype: dtype);
        wo = nn.Linear(c.DFf, c.DModel, hasBias: false, dtype: dtype);
        act = c.DenseActFn;
        Dropout = c.Dropout;
        lora = wi is not null
            ? new LoraSlots(this, "T5 feed-forward", (nameof(wi), wi), (nameof(wo), wo))
            : new LoraSlots(this, "T5 feed-forward", (nameof(wi_0), wi_0!), (nameof(wi_1), wi_1!), (nameof(wo), wo));
        RegisterComponents();
    }

    /// <summary>Adds a LoRA adapter to <c>wi</c>, <c>wi_0</c>, <c>wi_1</c> or <c>wo</c> (targets such as <c>all-linear</c>).</summary>
    public void AttachLora(string projection, LoraAdapter adapter) => lora.Attach(projection, adapter);

    public override Tensor forward(Tensor x)
    {
        var h = wi is not null ? Activation.Apply(act, lora.Forward(wi, x)) : Activation.Apply(act, lora.Forward(wi_0!, x)) * lora.Forward(wi_1!, x);
        return lora.Forward(wo, Dropouts.Apply(h, Dropout.Activation, training));
    }
}

/// <summary><c>layer.1</c> (encoder) or <c>layer.2</c> (decoder): the feed-forward sub-layer.</summary>
public sealed class T5LayerFF : nn.Module
{
    public readonly T5DenseFF DenseReluDense;
    public readonly RmsNorm layer_norm;

    public T5LayerFF(T5Config c, ScalarType? dtype) : base(nameof(T5LayerFF))
    {
        DenseReluDense = new T5DenseFF(c, dtype);
        layer_norm = new RmsNorm(c.DModel, c.LayerNormEpsilon, dtype);
        RegisterComponents();
    }
}

/// <summary>One block: <c>layer</c> = [self-attention, (cross-attention,) feed-forward].</summary>
public sealed class T5Block : nn.Module
{
    public readonly ModuleList<nn.Module> layer;

    public T5LayerSelfAttention Self => (T5LayerSelfAttention)layer[0];
    public T5LayerCrossAttention? Cross => layer.Count == 3 ? (T5LayerCrossAttention)layer[1] : null;
    public T5LayerFF FeedForward => (T5LayerFF)layer[^1];

    public T5Block(T5Config c, bool isDecoder, bool hasRelativeAttentionBias, ScalarType? dtype) : base(nameof(T5Block))
    {
        layer = new ModuleList<nn.Module>();
        layer.Add(new T5LayerSelfAttention(c, hasRelativeAttentionBias, dtype));
        if (isDecoder) layer.Add(new T5LayerCrossAttention(c, dtype));
        layer.Add(new T5LayerFF(c, dtype));
        RegisterComponents();
    }
}
#pragma warning restore IDE1006
