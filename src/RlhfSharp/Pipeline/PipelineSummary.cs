using System.Text.Json.Serialization;
using RlhfSharp.Reporting;

namespace RlhfSharp.Pipeline;

/// <summary>summary.json: what the run achieved, in numbers.</summary>
public sealed record PipelineSummary
{
    [JsonPropertyName("policies")] public Dictionary<string, PolicyScore> Policies { get; init; } = [];
    /// <summary>Pair accuracy of the reward model on held-out rankings; null when none were held out.</summary>
    [JsonPropertyName("rm_accuracy")] public double? RmAccuracy { get; init; }
    /// <summary>Rankings the reward model was evaluated on (a tenth, none when fewer than 2 rankings exist).</summary>
    [JsonPropertyName("rm_eval_rankings")] public int RmEvalRankings { get; init; }
    [JsonPropertyName("rm_train_rankings")] public int RmTrainRankings { get; init; }
    /// <summary>The RM's pair accuracy on the held-out rankings' responses ordered by the gold rubric (pairs tied in gold left out).</summary>
    [JsonPropertyName("rm_gold_accuracy"), JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)] public double RmGoldAccuracy { get; init; }
    [JsonPropertyName("annotator_gold_agreement")] public double AnnotatorGoldAgreement { get; init; }
    /// <summary>How often the annotators' held-out rankings order a pair as gold does: the ceiling of <see cref="RmAccuracy"/> for an RM that learnt gold.</summary>
    [JsonPropertyName("heldout_annotator_gold_agreement"), JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)] public double HeldOutAnnotatorGoldAgreement { get; init; }
    /// <summary>
    /// Gold of each process-reward-model best-of-n pick minus the outcome RM's best-of-n, paired by prompt (issue 14: does
    /// PRM-guided best-of-n beat outcome-RM best-of-n on gold); keyed by the PRM policy's name, empty without a PRM.
    /// </summary>
    [JsonPropertyName("prm_vs_rm_best_of_n")] public Dictionary<string, PairedDifference> PrmVsRmBestOfN { get; init; } = [];
    [JsonPropertyName("stage_seconds")] public Dictionary<string, double> StageSeconds { get; init; } = [];

    /// <summary>"RM accuracy 0.642", or "n/a" with the reason when no ranking was held out.</summary>
    public string RmAccuracyText() => RmAccuracy is double a
        ? a.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)
        : $"n/a (no held-out rankings: {RmTrainRankings} {(RmTrainRankings == 1 ? "ranking is" : "rankings are")} too few to hold any out; raise feedback.ranking_prompts)";
}
