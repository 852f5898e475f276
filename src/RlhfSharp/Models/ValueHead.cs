using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// A scalar value per token on top of a policy's hidden states, for PPO with a shared actor–critic body
/// (TRL's <c>AutoModelForCausalLMWithValueHead</c>, <c>v_head.summary</c>: a linear layer with bias). RL4LMs' seq2seq
/// value head has no bias (<c>nn.Linear(hidden_size, 1, bias=False)</c>).
/// </summary>
public sealed class ValueHead : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    public readonly Linear summary;
#pragma warning restore IDE1006

    public ValueHead(int hiddenSize, bool bias = true) : base(nameof(ValueHead))
    {
        summary = nn.Linear(hiddenSize, 1, hasBias: bias);
        RegisterComponents();
    }

    /// <summary>(B, T, hidden) → (B, T) values.</summary>
    public override Tensor forward(Tensor hidden) => summary.forward(hidden).squeeze(-1);
}
