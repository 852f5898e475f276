using RlhfSharp.Models.T5;
using static TorchSharp.torch;

namespace RlhfSharp.Training;

/// <summary>
/// Log-probabilities of target tokens under an encoder-decoder: prompts right-padded into the encoder, targets as
/// <c>labels</c> (the decoder reads them shifted right behind the start token), as transformers' T5 with labels and TRL's
/// <c>is_encoder_decoder</c> path compute them.
/// </summary>
public static class Seq2SeqLogprobs
{
    /// <summary>Per-token log-probs (B, Tt), 0 at padding, and the 0/1 target mask (B, Tt).</summary>
    public static (Tensor Logprobs, Tensor Mask) Of(T5ForConditionalGeneration model, IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> targets, int padId)
    {
        var device = model.shared.weight!.device;
        var (ids, mask) = RightPad(prompts, padId, device);
        var (labels, labelMask) = RightPad(targets, -100, device);
        var logits = model.Forward(ids, mask, model.ShiftRight(labels));
        var logprobs = logits.to(ScalarType.Float32).log_softmax(-1).gather(2, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1);
        var m = labelMask.to(ScalarType.Float32);
        return (logprobs * m, m);
    }

    /// <summary>Rows right-padded with <paramref name="pad"/>, and their 0/1 mask.</summary>
    public static (Tensor Ids, Tensor Mask) RightPad(IReadOnlyList<int[]> rows, long pad, Device device)
    {
        int width = Math.Max(1, rows.Max(r => r.Length));
        var ids = new long[rows.Count * width];
        var mask = new long[rows.Count * width];
        for (int i = 0; i < rows.Count; i++)
            for (int j = 0; j < width; j++)
            {
                bool real = j < rows[i].Length;
                ids[i * width + j] = real ? rows[i][j] : pad;
                mask[i * width + j] = real ? 1 : 0;
            }
        return (tensor(ids, [rows.Count, width], device: device), tensor(mask, [rows.Count, width], device: device));
    }
}
