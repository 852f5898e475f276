using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// What <see cref="CausalLM.Head"/> computes, as tensors: <c>logits = h·Weightᵀ + Bias</c>, then Gemma 2's
/// <c>Softcap·tanh(logits/Softcap)</c> when set. <see cref="Training.ChunkedLogprobs"/> applies it to a chunk of positions
/// at a time and differentiates it by hand.
/// </summary>
/// <param name="Weight">(V, H): <c>lm_head.weight</c>, or the embedding matrix when the head is tied.</param>
/// <param name="Bias">(V) or null: only GPT-J's head has one.</param>
/// <param name="Softcap">Gemma 2's <c>final_logit_softcapping</c>, or null.</param>
public sealed record LmHeadWeights(Tensor Weight, Tensor? Bias, double? Softcap);
