using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// Restricts the tokens a generation may pick at each step, as an HF <c>LogitsProcessor</c> that fills the scores of
/// forbidden tokens with −∞ (RL4LMs' <c>MaskLogitsProcessorCasualLM</c>, NLPO's masking policy). The
/// <see cref="Sampler"/> asks for the allowed set before each token, after its penalties and before temperature and
/// top-k/top-p (HF's processors run before its warpers), and reports the tokens it picked, so a mask that runs its own
/// model can keep its own KV cache in step.
/// </summary>
public interface ITokenMask
{
    /// <summary>Called once, under <c>no_grad</c>, with the left-padded prompts (B, P) before the first token.</summary>
    void Begin(Tensor promptIds, Tensor promptMask, int maxNewTokens);

    /// <summary>(B, V) bool: the tokens the next position may take. Called once per step, inside the step's dispose scope.</summary>
    Tensor Allowed();

    /// <summary>The tokens just picked (B, 1), with the attention mask (B, P + s + 1) and positions (B, 1) the model is run with.</summary>
    void Advance(Tensor next, Tensor attentionMask, Tensor positions);
}
