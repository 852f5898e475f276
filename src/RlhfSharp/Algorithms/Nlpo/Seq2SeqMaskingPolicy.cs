using RlhfSharp.Algorithms.Ppo;
using RlhfSharp.Lora;
using RlhfSharp.Models.T5;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Nlpo;

/// <summary>
/// NLPO's masking policy for an encoder-decoder (T5): the same schedule and top-p sets as <see cref="MaskingPolicy"/>
/// (RL4LMs applies one NLPO to its causal and seq2seq policies, allenai/RL4LMs@97df0bd <c>rl4lms/algorithms/nlpo</c>
/// and <c>envs/text_generation/policy/seq2seq_policy.py</c> <c>MaskLogitsProcessorSeq2SeqLM</c>), on a frozen copy of
/// the T5 actor that reads the encoder prompt once and follows the sampled decoder tokens with its own cache.
/// </summary>
public sealed class Seq2SeqMaskingPolicy(T5ForConditionalGeneration policy, NlpoConfig config, IReadOnlyList<int> alwaysAllowed)
    : MaskingCopy<T5ForConditionalGeneration>(policy, NewCopy(policy, config), config, alwaysAllowed)
{
    /// <summary>A T5 of the actor's architecture in the masking dtype, with its LoRA adapters if it has any; the base fills the weights.</summary>
    static T5ForConditionalGeneration NewCopy(T5ForConditionalGeneration policy, NlpoConfig config)
    {
        var weight = policy.shared.weight!;
        var model = new T5ForConditionalGeneration(policy.Config, config.MaskScalarType(weight.dtype));
        if (policy.Lora is { } lora) T5Lora.Attach(model, lora);
        model.to(weight.device);
        return model;
    }

    public override IRecordedTokenMask NewRollout() => new Rollout(this);

    /// <summary>
    /// The allowed set at each of the N decoder positions of rollout rows (<see cref="Generation.Seq2SeqSampler.Rollouts"/>'
    /// layout: the encoder prompt of width <paramref name="promptLength"/>, then the response), (B, N, V): the
    /// teacher-forced form of what a <see cref="NewRollout"/> records step by step.
    /// </summary>
    public Tensor Allowed(Tensor sequences, Tensor attentionMask, int promptLength)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var forward = new Seq2SeqActor(Model).Forward(sequences, attentionMask, zeros_like(sequences), promptLength, withHidden: false);
        long n = sequences.shape[1] - promptLength;
        return Rule.Allowed(forward.Logits.narrow(1, 0, n).to(ScalarType.Float32)).MoveToOuterDisposeScope();
    }

    /// <summary>One generation: the encoder output once, then the decoder one token per step on its own cache.</summary>
    sealed class Rollout(Seq2SeqMaskingPolicy owner) : TopPRollout(owner.Rule)
    {
        T5DecoderCache? cache;
        Tensor? encoderStates, encoderMask;

        public override void Begin(Tensor promptIds, Tensor promptMask, int maxNewTokens)
        {
            var m = owner.Model;
            var weight = m.shared.weight!;
            cache = new T5DecoderCache(m.Config, promptIds.shape[0], maxNewTokens + 1, weight.dtype, weight.device);
            using var scope = NewDisposeScope();
            encoderMask = promptMask.clone().DetachFromDisposeScope();
            encoderStates = m.Encode(promptIds, promptMask).DetachFromDisposeScope();
            var start = full(promptIds.shape[0], 1, m.Config.DecoderStartTokenId, ScalarType.Int64, promptIds.device);
            Step(start);
        }

        void Step(Tensor input)
        {
            using var scope = NewDisposeScope();
            var h = owner.Model.Decode(input, encoderStates!, encoderMask!, cache: cache);
            SetLogits(owner.Model.Head(h).squeeze(1).to(ScalarType.Float32).DetachFromDisposeScope());
        }

        public override void Advance(Tensor next, Tensor attentionMask, Tensor positions) => Step(next);

        protected override void DisposeState()
        {
            encoderStates?.Dispose();
            encoderMask?.Dispose();
            cache?.Dispose();
        }
    }
}
