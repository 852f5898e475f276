using RlhfSharp.Generation;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// The policy as <see cref="PpoTrainer"/> sees it, so one trainer serves decoder-only and encoder-decoder models: it
/// samples a rollout batch and, for the rows of a batch, gives the logits that predicted the response tokens and the
/// hidden states a value head reads. Everything else (scores, KL-shaped rewards, GAE, the losses, the step loop) is
/// the trainer's and does not depend on the architecture.
/// </summary>
public interface IPpoActor
{
    /// <summary>The trained (or frozen) module: its parameters, train/eval mode and saved state.</summary>
    nn.Module Module { get; }

    /// <summary>Width of the hidden states a value head reads.</summary>
    int HiddenSize { get; }

    /// <summary>The parameters' dtype and device (a value head is created to match).</summary>
    (ScalarType Dtype, Device Device) Placement { get; }

    /// <summary>
    /// Samples <paramref name="prompts"/>: <see cref="SampleBatch.Sequences"/> = the prompts (width
    /// <see cref="SampleBatch.PromptLength"/>) then the N response tokens; <paramref name="tokenMask"/> restricts the
    /// tokens each step may take (NLPO).
    /// </summary>
    SampleBatch Rollout(IReadOnlyList<int[]> prompts, SamplingOptions options, ITokenMask? tokenMask);

    /// <summary>The forward pass over rollout rows (<see cref="SampleBatch.Sequences"/>' layout), with gradients when enabled.</summary>
    /// <param name="withHidden">Whether the value head needs <see cref="ActorForward.Hidden"/>.</param>
    ActorForward Forward(Tensor sequences, Tensor attentionMask, Tensor positions, int promptLength, bool withHidden);

    /// <summary>A copy of <see cref="Module"/> with its own weights (PPO's EMA actor).</summary>
    nn.Module CloneModule();
}
