namespace RlhfSharp.Generation;

/// <summary>
/// How the <see cref="Sampler"/> picks tokens. Defaults are HF <c>GenerationConfig</c>'s sampling defaults
/// except <see cref="TopK"/>, which is off (0) as in OpenAI's API and TRL's PPO rollouts.
/// </summary>
public sealed record SamplingOptions
{
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>EOS is forbidden until this many tokens are out (HF <c>min_new_tokens</c>).</summary>
    public int MinNewTokens { get; init; }
    /// <summary>0 means greedy (argmax).</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Keep the k most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; }
    /// <summary>Nucleus sampling (Holtzman et al. 2020): keep the smallest set with probability ≥ p.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>CTRL's penalty (Keskar et al. 2019): logits of seen tokens divided by it (multiplied when negative).</summary>
    public double RepetitionPenalty { get; init; } = 1.0;
    /// <summary>
    /// OpenAI's presence penalty, −2…2: subtracted once from the logit of every token the row has generated so far
    /// (<c>logits[t] −= (count[t] &gt; 0)·presence_penalty</c>); prompt tokens do not count.
    /// </summary>
    public double PresencePenalty { get; init; }
    /// <summary>OpenAI's frequency penalty, −2…2: <c>logits[t] −= count[t]·frequency_penalty</c> over the row's generated tokens.</summary>
    public double FrequencyPenalty { get; init; }
    /// <summary>
    /// When set, each sampled token also reports the this-many most likely tokens under the model itself (log-softmax of
    /// the raw logits: no temperature, penalty or truncation) with their log-probabilities, as OpenAI's
    /// <c>top_logprobs</c> does. Null (the default) skips that work. The sampled token's own model log-prob is always
    /// reported (<see cref="SampleBatch.ModelLogprobs"/>, <see cref="SampledToken.ModelLogprob"/>).
    /// </summary>
    public int? TopLogprobs { get; init; }
    /// <summary>Generation of a row ends when its text contains one of these; the text is cut before it.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    /// <summary>Stop a row at its first EOS.</summary>
    public bool StopAtEos { get; init; } = true;
    /// <summary>
    /// OpenAI's <c>logit_bias</c>: token id → a value in −100…100 added to that token's logit before penalties, truncation
    /// and sampling (−100 bans a token in practice, 100 all but forces it). Null or empty: none.
    /// </summary>
    public IReadOnlyDictionary<int, double>? LogitBias { get; init; }
    /// <summary>Seed of the sampler's own generator; the same seed, prompts and options give the same tokens.</summary>
    public ulong Seed { get; init; } = 0;

    public bool Greedy => Temperature <= 0;

    public void Validate()
    {
        if (MaxNewTokens < 0) throw new RlhfException($"max_new_tokens must be ≥ 0, got {MaxNewTokens}.");
        if (MinNewTokens < 0 || MinNewTokens > MaxNewTokens) throw new RlhfException($"min_new_tokens must be between 0 and max_new_tokens ({MaxNewTokens}), got {MinNewTokens}.");
        if (TopK < 0) throw new RlhfException($"top_k must be ≥ 0, got {TopK}.");
        if (TopP <= 0 || TopP > 1) throw new RlhfException($"top_p must be in (0, 1], got {TopP}.");
        if (RepetitionPenalty <= 0) throw new RlhfException($"repetition_penalty must be > 0, got {RepetitionPenalty}.");
        if (!(PresencePenalty >= -2 && PresencePenalty <= 2)) throw new RlhfException($"presence_penalty must be between -2 and 2, got {PresencePenalty}.");
        if (!(FrequencyPenalty >= -2 && FrequencyPenalty <= 2)) throw new RlhfException($"frequency_penalty must be between -2 and 2, got {FrequencyPenalty}.");
        if (LogitBias?.FirstOrDefault(kv => !(kv.Value >= -100 && kv.Value <= 100)) is { Key: var id, Value: var v } && !(v >= -100 && v <= 100))
            throw new RlhfException($"logit_bias of token {id} must be between -100 and 100, got {v}.");
        if (TopLogprobs < 0) throw new RlhfException($"top_logprobs must be ≥ 0, got {TopLogprobs}.");
        if (double.IsNaN(Temperature) || Temperature < 0) throw new RlhfException($"temperature must be ≥ 0, got {Temperature}.");
    }
}
