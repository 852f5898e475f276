using static TorchSharp.torch;

namespace RlhfSharp.Tests.Models;

/// <summary>
/// Gemma, Gemma 2, Phi-3, Mistral with a sliding window shorter than the sequence, Mixtral and Qwen2-MoE against
/// transformers v4.44 (fixtures/hf-wave3), at the README's 1e-5 tolerance; and their save back to HF's exact key set.
/// </summary>
public sealed class VariantParityTests : IDisposable
{
    const string Set = "hf-wave3";
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-variant-").FullName;
    public void Dispose() => Directory.Delete(tmp, recursive: true);

    public static readonly TheoryData<string> Cases = new() { "gemma_tiny", "gemma2_tiny", "phi3_tiny", "mistral_sliding_tiny", "mixtral_tiny", "qwen2moe_tiny" };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_hidden_states_and_logprobs_match_hf(string name) => HfParity.Forward(new HfFixture(name, Set), name);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Saved_folder_has_exactly_hf_keys_and_reloads_to_the_same_logits(string name) => HfParity.SaveRoundTrip(new HfFixture(name, Set), name, Path.Combine(tmp, name));
}
