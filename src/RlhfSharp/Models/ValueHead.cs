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

    /// <summary>
    /// A head drawn from a generator of its own seeded with <paramref name="seed"/>: the numbers <c>nn.Linear</c> draws
    /// from torch's global generator right after <c>manual_seed(seed)</c>, without reading or moving that generator, so
    /// another thread seeding or drawing from it (parallel tests, a server) cannot change the head.
    /// </summary>
    public ValueHead(int hiddenSize, long seed, bool bias = true) : base(nameof(ValueHead))
    {
        using (LayerInit.Skipped()) summary = LayerInit.Linear(hiddenSize, 1, bias, null);
        using var generator = new Generator((ulong)seed);
        using (no_grad())
        {
            // nn.Linear's init (TorchSharp Linear.cs): kaiming_uniform_(weight, a = √5), then bias ~ U(±1/√fan_in).
            // LibTorch's kaiming_uniform_ (torch/csrc/api/src/nn/init.cpp) draws U(±√3 · gain / √fan_in) with gain =
            // calculate_gain(leaky_relu, √5) and takes no generator, so its bound is computed here the same way.
            double gain = nn.init.calculate_gain(nn.init.NonlinearityType.LeakyReLU, Math.Sqrt(5));
            double bound = Math.Sqrt(3.0) * (gain / Math.Sqrt(hiddenSize));
            summary.weight!.uniform_(-bound, bound, generator);
            summary.bias?.uniform_(-1 / Math.Sqrt(hiddenSize), 1 / Math.Sqrt(hiddenSize), generator);
        }
        RegisterComponents();
    }

    /// <summary>(B, T, hidden) → (B, T) values.</summary>
    public override Tensor forward(Tensor hidden) => summary.forward(hidden).squeeze(-1);
}
