using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// CTRL's repetition penalty (Keskar et al. 2019) as transformers' <c>RepetitionPenaltyLogitsProcessor</c>: the score of
/// every token in the row so far (its real prompt tokens and its new tokens) is divided by the penalty, or multiplied
/// when negative, once however often the token occurs.
/// </summary>
public sealed class RepetitionPenaltyProcessor(double penalty) : ILogitsProcessor
{
    public Tensor Process(Tensor scores, DecodingState state)
    {
        var (prompt, mask, p, generated) = (state.PromptIds, state.PromptMask, state.PromptLength, state.Generated);
        int b = generated.Length;
        int width = p + generated.Max(g => g.Count);
        var index = new long[b * width];
        for (int i = 0; i < b; i++)
        {
            int k = 0;
            long first = -1;
            for (int j = 0; j < p; j++) if (mask[i * p + j] == 1) { index[i * width + k++] = prompt[i * p + j]; if (first < 0) first = prompt[i * p + j]; }
            foreach (var t in generated[i]) { index[i * width + k++] = t; if (first < 0) first = t; }
            for (; k < width; k++) index[i * width + k] = first; // repeats of a seen token change nothing
        }
        var idx = tensor(index, [b, width], device: scores.device);
        var picked = scores.gather(1, idx);
        var penalised = where(picked.lt(0), picked * penalty, picked / penalty);
        return scores.scatter(1, idx, penalised);
    }
}
