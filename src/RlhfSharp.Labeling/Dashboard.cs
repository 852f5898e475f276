namespace RlhfSharp.Labeling;

/// <summary>One task's progress on the dashboard.</summary>
public sealed record TaskProgress(string Task, long Items, long Complete, long Labels);

/// <summary>One annotator's row on the dashboard; agreement is null until others labelled the same items.</summary>
public sealed record AnnotatorRow(string Name, bool Admin, long Labels, double? LabelsPerHour, double? MajorityAgreement, int MajorityComparisons);

/// <summary>What the admin dashboard shows: progress per task, throughput, and agreement (overall and per annotator).</summary>
public sealed record Dashboard(
    IReadOnlyList<TaskProgress> Tasks, long Labels, long LabelsLastHour, double? LabelsPerMinute,
    double? PairwiseAgreement, long PairwiseComparisons, double? KrippendorffAlpha, IReadOnlyList<AnnotatorRow> Annotators)
{
    /// <summary>When a rate is shown, for the page to say why one is missing.</summary>
    public string RateRule => $"rates are shown from {MinRateLabels} labels over {MinRateSpan.TotalMinutes:0} minutes";

    /// <summary>Reads the store and computes every number (agreement over all rank and pair labels).</summary>
    public static Dashboard Build(LabelStore store)
    {
        var labels = store.Labels();
        var agreement = RankingAgreement.Compute(labels.Where(l => l.Order is not null).Select(l => new RankedLabel(l.ItemId, l.AnnotatorId, l.Order!)).ToList());
        var byAnnotator = labels.GroupBy(l => l.AnnotatorId).ToDictionary(g => g.Key, g => g.ToList());
        var majority = agreement.PerAnnotator.ToDictionary(m => m.AnnotatorId);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        var rows = store.Annotators().Select(a =>
        {
            var mine = byAnnotator.GetValueOrDefault(a.Id) ?? [];
            var m = majority.GetValueOrDefault(a.Id);
            return new AnnotatorRow(a.Name, a.IsAdmin, mine.Count, Rate(mine, 3_600_000), Finite(m?.Agreement), m?.Comparisons ?? 0);
        }).ToList();
        return new Dashboard(
            store.TaskCounts().Select(t => new TaskProgress(t.Task, t.Items, t.Complete, t.Labels)).ToList(),
            labels.Count, labels.Count(l => l.CreatedMs > now - 3_600_000), Rate(labels, 60_000),
            Finite(agreement.PairwiseAgreement), agreement.PairwiseComparisons, Finite(agreement.Alpha), rows);
    }

    /// <summary>
    /// A rate needs this many labels over at least <see cref="MinRateSpan"/>: from two labels 11 s apart, "641.5 labels/hour"
    /// says nothing about a person's pace (breaks, reading time and warm-up are not in it yet).
    /// </summary>
    public const int MinRateLabels = 10;

    /// <inheritdoc cref="MinRateLabels"/>
    public static readonly TimeSpan MinRateSpan = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Labels per <paramref name="unitMs"/> between the first and the last label; null (shown as "–") until there are
    /// <see cref="MinRateLabels"/> labels spread over <see cref="MinRateSpan"/>.
    /// </summary>
    public static double? Rate(IReadOnlyList<StoredLabel> labels, double unitMs)
    {
        if (labels.Count < MinRateLabels) return null;
        double span = labels.Max(l => l.CreatedMs) - labels.Min(l => l.CreatedMs);
        return span < MinRateSpan.TotalMilliseconds ? null : (labels.Count - 1) / (span / unitMs);
    }

    static double? Finite(double? x) => x is double v && double.IsFinite(v) ? v : null;
}
