namespace RlhfSharp.Algorithms.Preference;

/// <summary>Which offline preference objective <see cref="PreferenceTrainer"/> optimises.</summary>
public enum PreferenceLossKind
{
    /// <summary>DPO (Rafailov et al. 2023, Eq. 7): <see cref="DpoLoss.Sigmoid"/>; TRL <c>loss_type="sigmoid"</c>.</summary>
    Sigmoid,
    /// <summary>IPO (Azar et al. 2023, Eq. 17) with length-normalised log-ratios, as TRL's <c>"ipo"</c>: <see cref="DpoLoss.IpoLengthNormalised"/>.</summary>
    Ipo,
    /// <summary>Conservative DPO (Mitchell 2023): the sigmoid loss with <see cref="DpoConfig.LabelSmoothing"/> &gt; 0.</summary>
    Cdpo,
    /// <summary>SimPO (Meng et al. 2024): reference-free, length-averaged, target margin γ: <see cref="SimpoLoss"/>.</summary>
    Simpo,
    /// <summary>ORPO (Hong et al. 2024): NLL on chosen plus an odds-ratio term, reference-free: <see cref="OrpoLoss"/>.</summary>
    Orpo,
    /// <summary>KTO (Ethayarajh et al. 2024) on unpaired labelled completions: <see cref="KtoLoss"/>.</summary>
    Kto,
}
