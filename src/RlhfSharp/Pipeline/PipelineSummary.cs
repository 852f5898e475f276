using System.Text.Json.Serialization;
using RlhfSharp.Reporting;

namespace RlhfSharp.Pipeline;

/// <summary>summary.json: what the run achieved, in numbers.</summary>
public sealed record PipelineSummary
{
    [JsonPropertyName("policies")] public Dictionary<string, PolicyScore> Policies { get; init; } = [];
    [JsonPropertyName("rm_accuracy")] public double RmAccuracy { get; init; }
    [JsonPropertyName("annotator_gold_agreement")] public double AnnotatorGoldAgreement { get; init; }
    [JsonPropertyName("stage_seconds")] public Dictionary<string, double> StageSeconds { get; init; } = [];
}
