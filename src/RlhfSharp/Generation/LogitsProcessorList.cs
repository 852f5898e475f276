using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// The processors <see cref="SamplingOptions"/> ask for, in transformers' order (<c>GenerationMixin._get_logits_processor</c>
/// in <c>generation/utils.py</c>, then the warpers): repetition penalty, OpenAI's frequency and presence penalties,
/// <c>min_new_tokens</c>; and, when sampling, temperature, top-k, top-p. A processor that would change nothing
/// (penalty 1 or 0, temperature 1, top-k 0 or ≥ V, top-p 1) is left out.
/// </summary>
public sealed class LogitsProcessorList(IReadOnlyList<ILogitsProcessor> processors)
{
    public IReadOnlyList<ILogitsProcessor> Processors => processors;

    /// <summary>The processors of <paramref name="o"/>; <paramref name="vocabSize"/> decides whether top-k filters anything.</summary>
    /// <param name="tokenMask">NLPO's masking policy, applied after the processors and before the warpers.</param>
    public static LogitsProcessorList For(SamplingOptions o, IReadOnlyCollection<int> eosIds, long vocabSize, ITokenMask? tokenMask = null)
    {
        var list = new List<ILogitsProcessor>();
        // OpenAI adds logit_bias to the model's logits before anything else.
        if (o.LogitBias is { Count: > 0 } bias) list.Add(new LogitBiasProcessor(bias));
        if (o.RepetitionPenalty != 1.0) list.Add(new RepetitionPenaltyProcessor(o.RepetitionPenalty));
        if (o.FrequencyPenalty != 0) list.Add(new FrequencyPenaltyProcessor(o.FrequencyPenalty));
        if (o.PresencePenalty != 0) list.Add(new PresencePenaltyProcessor(o.PresencePenalty));
        if (o.MinNewTokens > 0) list.Add(new MinNewTokensProcessor(o.MinNewTokens, eosIds));
        if (tokenMask is not null) list.Add(new TokenMaskProcessor(tokenMask));
        if (!o.Greedy)
        {
            if (o.Temperature != 1.0) list.Add(new TemperatureWarper(o.Temperature));
            if (o.TopK > 0 && o.TopK < vocabSize) list.Add(new TopKWarper(o.TopK));
            if (o.TopP < 1.0) list.Add(new TopPWarper(o.TopP));
        }
        return new LogitsProcessorList(list);
    }

    /// <summary>Whether a processor reads <see cref="DecodingState.Counts"/>.</summary>
    public bool NeedsCounts => processors.Any(p => p is FrequencyPenaltyProcessor or PresencePenaltyProcessor);

    public Tensor Process(Tensor scores, DecodingState state)
    {
        foreach (var processor in processors) scores = processor.Process(scores, state);
        return scores;
    }
}
