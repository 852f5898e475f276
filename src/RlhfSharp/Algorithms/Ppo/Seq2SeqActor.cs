using RlhfSharp.Generation;
using RlhfSharp.Lora;
using RlhfSharp.Models.T5;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ppo;

/// <summary>
/// An encoder-decoder (T5) policy for <see cref="PpoTrainer"/>, as RL4LMs' <c>Seq2SeqLMActorCriticPolicy</c> and TRL's
/// <c>AutoModelForSeq2SeqLMWithValueHead</c> run it: the prompt is the encoder's input, the actions are the decoder's
/// tokens, and the value head reads the decoder's last hidden state (after its final norm) at the position that emits
/// each token. Rollout rows hold the right-padded encoder prompt then the response (<see cref="Seq2SeqSampler.Rollouts"/>);
/// the decoder reads the start token then the response, so position j predicts response token j.
/// </summary>
/// <param name="adaptersOff">A reference that is the policy itself with its LoRA adapters switched off.</param>
public sealed class Seq2SeqActor(T5ForConditionalGeneration model, Seq2SeqSampler? sampler = null, bool adaptersOff = false) : IPpoActor
{
    public T5ForConditionalGeneration Model => model;
    public nn.Module Module => model;
    public int HiddenSize => model.Config.DModel;
    public (ScalarType Dtype, Device Device) Placement => (model.shared.weight!.dtype, model.shared.weight!.device);

    public SampleBatch Rollout(IReadOnlyList<int[]> prompts, SamplingOptions options, ITokenMask? tokenMask)
    {
        var s = sampler ?? throw new InvalidOperationException("this actor has no sampler (a reference model)");
        return s.Rollouts(prompts, options, tokenMask: tokenMask);
    }

    public nn.Module CloneModule() => model.Clone();

    public ActorForward Forward(Tensor sequences, Tensor attentionMask, Tensor positions, int promptLength, bool withHidden)
    {
        using var off = adaptersOff ? LoraModel.AdaptersOff(model) : null;
        long n = sequences.shape[1] - promptLength;
        var encoderIds = sequences.narrow(1, 0, promptLength);
        var encoderMask = attentionMask.narrow(1, 0, promptLength);
        var start = full(sequences.shape[0], 1, model.Config.DecoderStartTokenId, ScalarType.Int64, sequences.device);
        // Start token + the whole response: the decoder is causal, so the pad after a finished row changes nothing before it.
        var tokens = cat([start, sequences.narrow(1, promptLength, n)], 1);
        var decoded = model.Decode(tokens, model.Encode(encoderIds, encoderMask), encoderMask);
        return new ActorForward(NextTokenDistributions.FromLogits(model.Head(decoded)), tokens, 0, withHidden ? decoded : null);
    }
}
