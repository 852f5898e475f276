using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// A transformer with a linear score head and no bias, as HF <c>*ForSequenceClassification</c>
/// (<c>score.weight</c>). With one label it is a reward model (scores pooled at the last real token) or a
/// PPO critic (a value at every token, OpenRLHF's critic layout).
/// </summary>
public sealed class ScoreModel : nn.Module, IRewardModel
{
#pragma warning disable IDE1006
    public readonly DecoderBody model;
    public readonly Linear score;
#pragma warning restore IDE1006

    /// <summary>The architecture, with the current reward normalisation written into it.</summary>
    public TransformerConfig Config => model.Config with { RewardMean = RewardMean, RewardStd = RewardStd };

    /// <summary>Subtracted by <see cref="Rewards"/>: the mean score on SFT demonstrations (InstructGPT §3.5). Null: no normalisation.</summary>
    public double? RewardMean { get; set; }
    /// <summary>Divides the centred score in <see cref="Rewards"/> (OpenRLHF's <c>std</c>); null counts as 1.</summary>
    public double? RewardStd { get; set; }

    /// <param name="config">The architecture.</param>
    /// <param name="dtype">Element type of every parameter (default: float32).</param>
    public ScoreModel(TransformerConfig config, ScalarType? dtype = null) : base(nameof(ScoreModel))
    {
        model = DecoderBody.Create(config, dtype);
        score = LayerInit.Linear(model.OutputSize, config.NumLabels, hasBias: false, dtype);
        RewardMean = config.RewardMean;
        RewardStd = config.RewardStd;
        RegisterComponents();
    }

    /// <summary>
    /// The scalar reward of each sequence (B): the pooled score, normalised as OpenRLHF's reward model does when its
    /// config has <c>normalize_reward</c> (models/model.py: <c>(reward − mean) / std</c>), so a reward model reads the
    /// same scale here and there.
    /// </summary>
    public Tensor Rewards(Tensor inputIds, Tensor? attentionMask = null)
    {
        // A reward model held in bf16 (a frozen role) hands float32 scores on, normalised in float32, not bf16's 3 digits.
        var r = Forward(inputIds, attentionMask, attentionMask is null ? null : Transformer.PositionsFromMask(attentionMask)).select(1, 0).to(ScalarType.Float32);
        if (RewardMean is not double mean) return r;
        return RewardStd is double std ? (r - mean) / std : r - mean;
    }

    nn.Module IRewardModel.Module => this;
    Device IRewardModel.Device => model.Embeddings.weight!.device;
    Tensor IRewardModel.Scores(Tensor inputIds, Tensor attentionMask) => Forward(inputIds, attentionMask);

    /// <summary>Scores at every position (B, T, labels).</summary>
    public Tensor TokenScores(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null)
        => score.forward(model.Forward(inputIds, attentionMask, positionIds));

    /// <summary>Scores pooled at each row's last real token (B, labels): the reward of the sequence.</summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null)
    {
        var scores = TokenScores(inputIds, attentionMask, positionIds);
        var index = LastTokenIndex(inputIds, attentionMask);
        return scores.gather(1, index.view(-1, 1, 1).expand(-1, 1, scores.shape[2])).squeeze(1);
    }

    /// <summary>
    /// Index of the last real token of each row: the last position whose mask is 1 (T−1 without a mask).
    /// For right- and left-padded rows this is the index HF pools at.
    /// </summary>
    public static Tensor LastTokenIndex(Tensor inputIds, Tensor? attentionMask)
    {
        long t = inputIds.shape[1];
        if (attentionMask is null) return full(inputIds.shape[0], t - 1, int64, inputIds.device);
        var positions = arange(t, dtype: int64, device: inputIds.device).unsqueeze(0);
        return (attentionMask.to(int64) * positions).argmax(1);
    }
}
