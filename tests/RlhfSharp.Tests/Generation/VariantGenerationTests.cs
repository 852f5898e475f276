namespace RlhfSharp.Tests.Generation;

/// <summary>Greedy generation of the fixtures/hf-wave3 families against HF <c>generate</c>: KV cache, no cache, left padding.</summary>
public class VariantGenerationTests
{
    const string Set = "hf-wave3";
    public static readonly TheoryData<string> Cases = Models.VariantParityTests.Cases;

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_with_the_kv_cache_equal_hf_single_and_left_padded(string name) => HfParity.GreedyTokens(new HfFixture(name, Set));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_tokens_without_a_cache_equal_hf(string name) => HfParity.GreedyTokensWithoutCache(new HfFixture(name, Set));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kv_cache_step_logits_match_hf_and_a_full_forward(string name) => HfParity.KvCacheStepLogits(new HfFixture(name, Set), name);
}
