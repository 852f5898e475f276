using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models.T5;

/// <summary>
/// T5 with a sequence-classification head, as transformers v4.44 modeling_t5.py <c>T5ForSequenceClassification</c>
/// (added in v4.37); with one label it is a reward model. The whole sequence (prompt + completion + EOS) goes to the
/// encoder and, shifted right behind the start token (HF builds <c>decoder_input_ids = _shift_right(input_ids)</c> when
/// none are given), to the decoder; the score is read from the decoder's last hidden state at the row's last EOS
/// (<c>sequence_output[eos_mask].view(B, -1, d)[:, -1]</c>), through <see cref="T5ClassificationHead"/>. Parameter names
/// are HF's (<c>transformer.shared</c>, <c>transformer.encoder…</c>, <c>classification_head.dense…</c>).
/// </summary>
/// <remarks>HF refuses a batch whose rows hold different numbers of EOS tokens; here every row is read at its own last
/// EOS, which is what HF reads whenever it accepts the batch. A row without EOS is an error.</remarks>
public sealed class T5ForSequenceClassification : nn.Module, IRewardModel
{
#pragma warning disable IDE1006 // HF parameter names
    /// <summary>HF's <c>T5Model</c>: shared embedding, encoder and decoder, no language-model head.</summary>
    public readonly T5ForConditionalGeneration transformer;
    public readonly T5ClassificationHead classification_head;
#pragma warning restore IDE1006

    public T5Config Config => transformer.Config;
    public int NumLabels { get; }
    public double? RewardMean { get; set; }
    public double? RewardStd { get; set; }

    public T5ForSequenceClassification(T5Config config, int numLabels = 1, ScalarType? dtype = null) : base(nameof(T5ForSequenceClassification))
    {
        NumLabels = numLabels;
        transformer = new T5ForConditionalGeneration(config, dtype, lmHead: false);
        classification_head = new T5ClassificationHead(config.DModel, numLabels, dtype);
        RegisterComponents();
    }

    nn.Module IRewardModel.Module => this;
    Device IRewardModel.Device => transformer.shared.weight!.device;

    /// <summary>The decoder's final hidden state at each row's last EOS (B, d_model).</summary>
    public Tensor SentenceRepresentation(Tensor inputIds, Tensor attentionMask)
    {
        var encoded = transformer.Encode(inputIds, attentionMask);
        var decoded = transformer.Decode(transformer.ShiftRight(inputIds), encoded, attentionMask);
        var eos = inputIds.eq(Config.EosTokenId);
        if (!eos.any(1).all().item<bool>())
            throw new RlhfException($"a T5 reward model reads the decoder at the last EOS (id {Config.EosTokenId}) of each sequence, and a row has none.");
        var positions = arange(inputIds.shape[1], dtype: int64, device: inputIds.device).unsqueeze(0);
        var last = (eos.to(int64) * positions).argmax(1);
        return decoded.gather(1, last.view(-1, 1, 1).expand(-1, 1, decoded.shape[2])).squeeze(1);
    }

    /// <summary>The scores (B, labels) of right-padded rows.</summary>
    public Tensor Scores(Tensor inputIds, Tensor attentionMask) => classification_head.Forward(SentenceRepresentation(inputIds, attentionMask));

    /// <summary>The first score of each row, normalised as <see cref="ScoreModel.Rewards"/> does (OpenRLHF <c>(r − mean) / std</c>).</summary>
    public Tensor Rewards(Tensor inputIds, Tensor? attentionMask = null)
    {
        var r = Scores(inputIds, attentionMask ?? ones_like(inputIds)).select(1, 0);
        if (RewardMean is not double mean) return r;
        return RewardStd is double std ? (r - mean) / std : r - mean;
    }
}
