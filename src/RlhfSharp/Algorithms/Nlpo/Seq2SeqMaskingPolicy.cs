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
public sealed class Seq2SeqMaskingPolicy : IActionSpaceMask, IDisposable
{
    readonly T5ForConditionalGeneration policy;
    readonly T5ForConditionalGeneration model;
    readonly NlpoConfig config;
    readonly IReadOnlyList<int> alwaysAllowed;

    /// <param name="policy">The actor; copied now and at each refresh (with its LoRA adapters, if any).</param>
    /// <param name="alwaysAllowed">Token ids never masked (RL4LMs: the tokenizer's all_special_ids; the stage passes <c>ITokenizer.SpecialIds</c>, EOS and pad).</param>
    public Seq2SeqMaskingPolicy(T5ForConditionalGeneration policy, NlpoConfig config, IReadOnlyList<int> alwaysAllowed)
    {
        this.policy = policy; this.config = config; this.alwaysAllowed = alwaysAllowed;
        var weight = policy.shared.weight!;
        model = new T5ForConditionalGeneration(policy.Config, config.MaskScalarType(weight.dtype));
        if (policy.Lora is { } lora) T5Lora.Attach(model, lora);
        model.to(weight.device);
        Copy();
        model.eval();
        foreach (var p in model.parameters()) p.requires_grad = false;
    }

    void Copy()
    {
        using var _ = no_grad();
        var current = policy.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in model.named_parameters()) p.copy_(current[name]);
    }

    /// <summary>The masking policy's weights: saved with the stage's state, so a resumed run masks as the uninterrupted one.</summary>
    public IReadOnlyDictionary<string, nn.Module> Modules => new Dictionary<string, nn.Module> { ["mask_policy"] = model };

    /// <summary>How many times the copy was refreshed in this process.</summary>
    public int Refreshes { get; private set; }

    public IRecordedTokenMask NewRollout() => new Rollout(this);

    public void AfterRollout(int step)
    {
        if ((step + 1) % config.TargetUpdateIterations != 0) return;
        Copy();
        Refreshes++;
    }

    /// <summary>
    /// The allowed set at each of the N decoder positions of rollout rows (<see cref="Generation.Seq2SeqSampler.Rollouts"/>'
    /// layout: the encoder prompt of width <paramref name="promptLength"/>, then the response), (B, N, V): the
    /// teacher-forced form of what a <see cref="NewRollout"/> records step by step.
    /// </summary>
    public Tensor Allowed(Tensor sequences, Tensor attentionMask, int promptLength)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var forward = new Seq2SeqActor(model).Forward(sequences, attentionMask, zeros_like(sequences), promptLength, withHidden: false);
        long n = sequences.shape[1] - promptLength;
        return TopPMask.Allowed(forward.Logits.narrow(1, 0, n).to(ScalarType.Float32), config.TopMask, config.MinTokensToKeep, alwaysAllowed).MoveToOuterDisposeScope();
    }

    public void Dispose() => model.Dispose();

    /// <summary>One generation: the encoder output once, then the decoder one token per step on its own cache.</summary>
    sealed class Rollout(Seq2SeqMaskingPolicy owner) : IRecordedTokenMask
    {
        T5DecoderCache? cache;
        Tensor? encoderStates, encoderMask, logits;
        readonly List<Tensor> steps = [];

        public void Begin(Tensor promptIds, Tensor promptMask, int maxNewTokens)
        {
            var m = owner.model;
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
            var h = owner.model.Decode(input, encoderStates!, encoderMask!, cache: cache);
            var next = owner.model.Head(h).squeeze(1).to(ScalarType.Float32).DetachFromDisposeScope();
            logits?.Dispose();
            logits = next;
        }

        public Tensor Allowed()
        {
            var allowed = TopPMask.Allowed(logits!, owner.config.TopMask, owner.config.MinTokensToKeep, owner.alwaysAllowed);
            steps.Add(allowed.clone().DetachFromDisposeScope());
            return allowed;
        }

        public void Advance(Tensor next, Tensor attentionMask, Tensor positions) => Step(next);

        public Tensor Recorded()
        {
            if (steps.Count == 0) throw new InvalidOperationException("No token was sampled with this mask.");
            return stack(steps, 1);
        }

        public void Dispose()
        {
            foreach (var t in steps) t.Dispose();
            logits?.Dispose();
            encoderStates?.Dispose();
            encoderMask?.Dispose();
            cache?.Dispose();
        }
    }
}
