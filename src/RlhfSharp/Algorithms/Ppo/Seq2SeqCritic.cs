using RlhfSharp.Lora;
using RlhfSharp.Models;
using RlhfSharp.Models.T5;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// The separate critic of an encoder-decoder (T5) policy, as RL4LMs' <c>Seq2SeqLMActorCriticPolicy</c> builds it
/// (rl4lms/envs/text_generation/policy/seq2seq_policy.py, <c>_build_model_heads</c> and <c>forward_value</c>): a second
/// T5 started from the policy's own checkpoint (the value model), whose decoder's last hidden state (after its final norm)
/// feeds a bias-free linear value head. Its encoder reads the prompt and its decoder the start token then the response, so
/// decoder position j gives the value of the state that chooses response token j, the position the actor's
/// <see cref="Seq2SeqActor"/> reads it at. The language-model head is left out: RL4LMs' value model never uses its logits,
/// so only the body (transformers' <c>T5Model</c>) and the value head train.
/// </summary>
public sealed class Seq2SeqCritic : nn.Module, IPpoCritic
{
#pragma warning disable IDE1006 // HF names for the body, TRL's for the head
    public readonly T5ForConditionalGeneration transformer;
    public readonly ValueHead value_head;
#pragma warning restore IDE1006

    /// <summary>A critic with a new body of <paramref name="config"/>; <see cref="Load"/> fills it from a checkpoint.</summary>
    public Seq2SeqCritic(T5Config config, ScalarType? dtype = null) : base(nameof(Seq2SeqCritic))
    {
        transformer = new T5ForConditionalGeneration(config, dtype, lmHead: false);
        value_head = new ValueHead(config.DModel, bias: false); // RL4LMs: nn.Linear(hidden_size, 1, bias=False)
        if (dtype is { } t) value_head.to(t);
        RegisterComponents();
    }

    public nn.Module Module => this;

    /// <summary>
    /// The critic for a policy started from <paramref name="dir"/> (a T5 folder or a PEFT adapter on one): the body is that
    /// checkpoint's, the value head new, drawn after seeding with <paramref name="seed"/> so runs repeat.
    /// </summary>
    public static Seq2SeqCritic Load(string dir, long seed)
    {
        using var lm = T5Lora.LoadMerged(dir);
        manual_seed(seed);
        var critic = new Seq2SeqCritic(lm.Config, lm.shared.weight!.dtype);
        var source = lm.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
            foreach (var (name, p) in critic.transformer.named_parameters()) p.copy_(source[name]);
        critic.eval();
        return critic;
    }

    public Tensor Values(Tensor sequences, Tensor attentionMask, Tensor positions, int promptLength, int n)
    {
        var encoderIds = sequences.narrow(1, 0, promptLength);
        var encoderMask = attentionMask.narrow(1, 0, promptLength);
        var start = full(sequences.shape[0], 1, transformer.Config.DecoderStartTokenId, ScalarType.Int64, sequences.device);
        // The decoder is causal, so the pad after a finished row changes no value before it (RL4LMs steps the decoder).
        var tokens = cat([start, sequences.narrow(1, promptLength, sequences.shape[1] - promptLength)], 1);
        var decoded = transformer.Decode(tokens, transformer.Encode(encoderIds, encoderMask), encoderMask);
        return value_head.forward(decoded).narrow(1, 0, n);
    }
}
