namespace RlhfSharp.Labeling;

/// <summary>One annotator's order of one item's responses, best first (a pair label is an order of two).</summary>
public sealed record RankedLabel(long ItemId, long AnnotatorId, IReadOnlyList<long> Order);

/// <summary>How one annotator's judgements compare with the majority of the others on the same items.</summary>
/// <param name="Comparisons">Response pairs where the other annotators had a strict majority.</param>
public sealed record MajorityAgreement(long AnnotatorId, double Agreement, int Comparisons);

/// <summary>The dashboard's agreement numbers.</summary>
/// <param name="PairwiseAgreement">Over every two annotators who ordered the same response pair: the fraction who ordered it alike
/// (InstructGPT's inter-annotator agreement, 72.6% for its labellers).</param>
/// <param name="PairwiseComparisons">How many (annotator pair, response pair) comparisons that fraction is over.</param>
/// <param name="Alpha">Krippendorff's ordinal alpha on rank positions: one unit per (item, response), each annotator's rank of it as the value.</param>
public sealed record AgreementReport(double PairwiseAgreement, long PairwiseComparisons, double Alpha, IReadOnlyList<MajorityAgreement> PerAnnotator);

/// <summary>Inter-annotator agreement on rankings and pairwise choices.</summary>
public static class RankingAgreement
{
    public static AgreementReport Compute(IReadOnlyList<RankedLabel> labels)
    {
        // For every item and response pair (a < b by id): each annotator's vote, true when a was put above b.
        var votes = new Dictionary<(long Item, long A, long B), List<(long Who, bool AFirst)>>();
        foreach (var label in labels)
        {
            var position = label.Order.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
            foreach (var a in position.Keys)
                foreach (var b in position.Keys)
                    if (a < b)
                    {
                        var key = (label.ItemId, a, b);
                        if (!votes.TryGetValue(key, out var list)) votes[key] = list = [];
                        list.Add((label.AnnotatorId, position[a] < position[b]));
                    }
        }

        long same = 0, compared = 0;
        var majority = new Dictionary<long, (int Agree, int Total)>();
        foreach (var list in votes.Values)
        {
            for (int i = 0; i < list.Count; i++)
                for (int j = i + 1; j < list.Count; j++)
                {
                    compared++;
                    if (list[i].AFirst == list[j].AFirst) same++;
                }
            foreach (var (who, aFirst) in list)
            {
                // Leave-one-out: the annotator's own vote must not make the majority it is graded against.
                int forA = list.Count(v => v.Who != who && v.AFirst), forB = list.Count(v => v.Who != who && !v.AFirst);
                if (forA == forB) continue;
                var (agree, total) = majority.GetValueOrDefault(who);
                majority[who] = (agree + ((forA > forB) == aFirst ? 1 : 0), total + 1);
            }
        }

        var units = labels
            .SelectMany(l => l.Order.Select((id, rank) => (Unit: (l.ItemId, id), Rank: (double)(rank + 1))))
            .GroupBy(x => x.Unit)
            .Select(g => (IReadOnlyList<double>)g.Select(x => x.Rank).ToList());
        double alpha = KrippendorffAlpha.Compute(units, AlphaMetric.Ordinal);

        var perAnnotator = labels.Select(l => l.AnnotatorId).Distinct().Order()
            .Select(who => majority.TryGetValue(who, out var m) && m.Total > 0
                ? new MajorityAgreement(who, (double)m.Agree / m.Total, m.Total)
                : new MajorityAgreement(who, double.NaN, 0))
            .ToList();
        return new AgreementReport(compared == 0 ? double.NaN : (double)same / compared, compared, alpha, perAnnotator);
    }
}
