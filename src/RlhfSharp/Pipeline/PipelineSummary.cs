using System.Text.Json.Serialization;
using RlhfSharp.Reporting;

namespace RlhfSharp.Pipeline;

/// <summary>summary.json: what the run achieved, in numbers.</summary>
public sealed record PipelineSummary
{
    [JsonPropertyName("policies")] public Dictionary<string, PolicyScore> Policies { get; init; } = [];
    [JsonPropertyName("rm_accuracy")] public double RmAccuracy { get; init; }
    /// <summary>The RM's pair accuracy on the held-out rankings' responses ordered by the gold rubric (pairs tied in gold left out).</summary>
    [JsonPropertyName("rm_gold_accuracy"), JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)] public double RmGoldAccuracy { get; init; }
    [JsonPropertyName("annotator_gold_agreement")] public double AnnotatorGoldAgreement { get; init; }
    /// <summary>How often the annotators' held-out rankings order a pair as gold does: the ceiling of <see cref="RmAccuracy"/> for an RM that learnt gold.</summary>
    [JsonPropertyName("heldout_annotator_gold_agreement"), JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)] public double HeldOutAnnotatorGoldAgreement { get; init; }
    [JsonPropertyName("stage_seconds")] public Dictionary<string, double> StageSeconds { get; init; } = [];
}
