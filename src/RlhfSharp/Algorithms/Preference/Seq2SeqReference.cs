using RlhfSharp.Lora;
using RlhfSharp.Models.T5;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Preference;

/// <summary>
/// The frozen reference of the encoder-decoder preference trainers: a separate copy with its gradients off, or the
/// policy itself with its LoRA adapters switched off while the reference runs (one copy of the weights: TRL's
/// <c>ref_model=None</c> with a PEFT model, huggingface/trl@f2cd577 <c>trl/trainer/dpo_trainer.py</c> <c>null_ref_context</c>).
/// Dropout in the policy's adapters is disabled, because its log-probs are compared with the dropout-free reference's
/// (TRL <c>disable_dropout=True</c>).
/// </summary>
sealed class Seq2SeqReference
{
    readonly T5ForConditionalGeneration policy;

    /// <param name="method">The method's name for the error when the policy is its own reference without adapters.</param>
    /// <param name="needed">False for the reference-free losses (SimPO, ORPO), which may run without one.</param>
    /// <param name="disableDropout">The stage's <c>disable_dropout</c> (TRL's default true for DPO and KTO).</param>
    public Seq2SeqReference(T5ForConditionalGeneration policy, T5ForConditionalGeneration reference, string method, bool needed = true, bool disableDropout = true)
    {
        this.policy = policy;
        Model = reference;
        if (!IsPolicy) foreach (var p in reference.parameters()) p.requires_grad = false;
        else if (policy.Lora is null && needed) throw new RlhfException($"{method}: the reference is the policy itself, which needs LoRA adapters to switch off.");
        if (disableDropout) LoraModel.DisableDropout(policy);
    }

    public T5ForConditionalGeneration Model { get; }

    bool IsPolicy => ReferenceEquals(policy, Model);

    /// <summary>Puts a separate reference in eval mode (the policy's own mode is the trainer's).</summary>
    public void Eval()
    {
        if (!IsPolicy) Model.eval();
    }

    /// <summary>The reference's log-probs of <paramref name="targets"/> after <paramref name="prompts"/>, summed per row, without gradients.</summary>
    public Tensor SumLogprobs(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> targets, int padId)
    {
        using var _ = no_grad();
        using (IsPolicy ? LoraModel.AdaptersOff(policy) : null)
            return Seq2SeqLogprobs.Of(Model, prompts, targets, padId).Logprobs.sum(1);
    }
}
