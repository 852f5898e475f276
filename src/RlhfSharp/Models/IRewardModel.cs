using TorchSharp;
using static TorchSharp.torch;

namespace RlhfSharp.Models;

/// <summary>
/// A model that gives each sequence a score, what <see cref="Algorithms.Reward.RewardTrainer"/> trains: a decoder-only
/// <see cref="ScoreModel"/> (HF <c>*ForSequenceClassification</c>, pooled at the last real token) or an encoder-decoder
/// <see cref="T5.T5ForSequenceClassification"/> (pooled at the last EOS of the decoder).
/// </summary>
public interface IRewardModel
{
    /// <summary>The module itself: its parameters train, it switches between train and eval, checkpoints hold it.</summary>
    nn.Module Module { get; }

    /// <summary>Where its weights live; batches are built there.</summary>
    Device Device { get; }

    /// <summary>The pooled scores (B, labels) of right-padded sequences ending in EOS.</summary>
    Tensor Scores(Tensor inputIds, Tensor attentionMask);

    /// <summary>The scalar reward of each sequence (B): the first score, normalised by <see cref="RewardMean"/> and <see cref="RewardStd"/>.</summary>
    Tensor Rewards(Tensor inputIds, Tensor? attentionMask = null);

    /// <summary>Subtracted by <see cref="Rewards"/> (InstructGPT §3.5); null: no normalisation.</summary>
    double? RewardMean { get; set; }

    /// <summary>Divides the centred score in <see cref="Rewards"/> (OpenRLHF's <c>std</c>); null counts as 1.</summary>
    double? RewardStd { get; set; }
}
