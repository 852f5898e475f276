namespace RlhfSharp.Evaluation;

/// <summary>
/// Translation Edit Rate (Snover et al. 2006): the fewest word insertions, deletions, substitutions and block shifts
/// that turn a hypothesis into a reference, over the reference length. Finding the true minimum with shifts is
/// NP-hard, so this ports sacreBLEU's <c>lib_ter.py</c> (itself following Tercom): greedily apply the shift that lowers
/// the beam-limited Levenshtein distance most, until none does. Defaults match <c>sacrebleu.metrics.TER()</c>:
/// case-insensitive, whitespace tokenization, no punctuation normalisation. sacreBLEU's row cache is left out (it
/// changes speed, not results).
/// </summary>
public static class Ter
{
    // Tercom's limits, as sacreBLEU keeps them.
    const int MaxShiftSize = 10, MaxShiftDist = 50, BeamWidth = 25, MaxShiftCandidates = 1000;
    const long Infinity = (long)1e16;
    const char Nop = ' ', Sub = 's', Ins = 'i', Del = 'd';

    /// <summary>
    /// Corpus TER, 0–100+: edits (the best reference per sentence) summed over sentences, divided by the summed
    /// average reference length.
    /// </summary>
    public static TerScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references, bool caseSensitive = false)
    {
        if (hypotheses.Count != references.Count) throw new ArgumentException($"{hypotheses.Count} hypotheses but {references.Count} reference sets.");
        string[] Tok(string s) => Tokenizer13a.Split(caseSensitive ? s.TrimEnd() : s.TrimEnd().ToLowerInvariant());
        double edits = 0, refLength = 0;
        for (int s = 0; s < hypotheses.Count; s++)
        {
            var hyp = Tok(hypotheses[s]);
            double best = double.MaxValue, lengths = 0;
            foreach (var r in references[s])
            {
                var rt = Tok(r);
                best = Math.Min(best, Edits(hyp, rt));
                lengths += rt.Length;
            }
            edits += best;
            refLength += lengths / references[s].Count;
        }
        double score = refLength > 0 ? edits / refLength : edits > 0 ? 1 : 0;
        return new TerScore(100 * score, edits, refLength);
    }

    /// <summary>Shifts plus the edit distance left after them (sacreBLEU's <c>translation_edit_rate</c>).</summary>
    public static int Edits(string[] hyp, string[] reference)
    {
        if (reference.Length == 0) return hyp.Length;
        int shifts = 0, checkedCandidates = 0;
        var input = hyp;
        while (true)
        {
            var (delta, shifted) = BestShift(input, reference, ref checkedCandidates);
            if (checkedCandidates >= MaxShiftCandidates || delta <= 0) break;
            shifts++;
            input = shifted;
        }
        return shifts + (int)EditDistance(input, reference).Distance;
    }

    static (long Delta, string[] Shifted) BestShift(string[] h, string[] r, ref int checkedCandidates)
    {
        var (preScore, invTrace) = EditDistance(h, r);
        // The alignment is read as if rewriting the reference into the hypothesis, hence the flipped trace.
        var trace = invTrace.Select(op => op == Ins ? Del : op == Del ? Ins : op);
        var (align, refErr, hypErr) = Alignment(trace);
        (long Delta, int Length, int NegStart, int NegIdx, string[] Words)? best = null;
        foreach (var (startH, startR, length) in ShiftedPairs(h, r))
        {
            if (hypErr.Skip(startH).Take(length).Sum() == 0) continue;
            if (refErr.Skip(startR).Take(length).Sum() == 0) continue;
            if (startH <= align[startR] && align[startR] < startH + length) continue;
            int prevIdx = -1;
            for (int offset = -1; offset < length; offset++)
            {
                int idx;
                if (startR + offset == -1) idx = 0;
                else if (align.TryGetValue(startR + offset, out var a)) idx = a + 1;
                else break;
                if (idx == prevIdx) continue;
                prevIdx = idx;
                var shifted = PerformShift(h, startH, length, idx);
                var candidate = (preScore - EditDistance(shifted, r).Distance, length, -startH, -idx, shifted);
                checkedCandidates++;
                // Tercom's ranking: biggest gain, then longest, then earliest source, then earliest target.
                if (best is null || Compare(candidate, best.Value) > 0) best = candidate;
            }
            if (checkedCandidates >= MaxShiftCandidates) break;
        }
        return best is null ? (0, h) : (best.Value.Delta, best.Value.Words);
    }

    static int Compare((long, int, int, int, string[] W) a, (long, int, int, int, string[] W) b)
    {
        int c = (a.Item1, a.Item2, a.Item3, a.Item4).CompareTo((b.Item1, b.Item2, b.Item3, b.Item4));
        if (c != 0) return c;
        // Python then compares the shifted word lists themselves.
        for (int i = 0; i < Math.Min(a.W.Length, b.W.Length); i++)
        {
            int w = string.CompareOrdinal(a.W[i], b.W[i]);
            if (w != 0) return w;
        }
        return a.W.Length.CompareTo(b.W.Length);
    }

    static string[] PerformShift(string[] w, int start, int length, int target)
    {
        IEnumerable<string> S(int from, int to) => w.Skip(from).Take(Math.Max(0, to - from));
        if (target < start) return [.. S(0, target), .. S(start, start + length), .. S(target, start), .. S(start + length, w.Length)];
        if (target > start + length) return [.. S(0, start), .. S(start + length, target), .. S(start, start + length), .. S(target, w.Length)];
        return [.. S(0, start), .. S(start + length, length + target), .. S(start, start + length), .. S(length + target, w.Length)];
    }

    static IEnumerable<(int StartH, int StartR, int Length)> ShiftedPairs(string[] h, string[] r)
    {
        for (int sh = 0; sh < h.Length; sh++)
            for (int sr = 0; sr < r.Length; sr++)
            {
                if (Math.Abs(sr - sh) > MaxShiftDist) continue;
                int length = 0;
                while (h[sh + length] == r[sr + length] && length < MaxShiftSize)
                {
                    length++;
                    yield return (sh, sr, length);
                    if (h.Length == sh + length || r.Length == sr + length) break;
                }
            }
    }

    static (Dictionary<int, int> Align, List<int> RefErr, List<int> HypErr) Alignment(IEnumerable<char> trace)
    {
        int posH = -1, posR = -1;
        var align = new Dictionary<int, int>();
        var refErr = new List<int>();
        var hypErr = new List<int>();
        foreach (var op in trace)
        {
            switch (op)
            {
                case Nop or Sub:
                    posH++; posR++; align[posR] = posH;
                    int e = op == Sub ? 1 : 0;
                    hypErr.Add(e); refErr.Add(e);
                    break;
                case Ins: posH++; hypErr.Add(1); break;
                case Del: posR++; align[posR] = posH; refErr.Add(1); break;
            }
        }
        return (align, refErr, hypErr);
    }

    /// <summary>Levenshtein distance within a beam around the length-scaled diagonal, with Tercom's tie-breaking.</summary>
    static (long Distance, string Trace) EditDistance(string[] h, string[] r)
    {
        int nh = h.Length, nr = r.Length;
        var cost = new long[nh + 1, nr + 1];
        var op = new char[nh + 1, nr + 1];
        for (int i = 0; i <= nh; i++) for (int j = 0; j <= nr; j++) { cost[i, j] = Infinity; op[i, j] = 'x'; }
        for (int j = 0; j <= nr; j++) { cost[0, j] = j; op[0, j] = Ins; }
        double ratio = nh > 0 ? (double)nr / nh : 1;
        int beam = BeamWidth < ratio / 2 ? (int)Math.Ceiling(ratio / 2 + BeamWidth) : BeamWidth;
        for (int i = 1; i <= nh; i++)
        {
            int diag = (int)Math.Floor(i * ratio);
            int minJ = Math.Max(0, diag - beam);
            int maxJ = i == nh ? nr + 1 : Math.Min(nr + 1, diag + beam);
            for (int j = minJ; j < maxJ; j++)
            {
                if (j == 0) { cost[i, j] = cost[i - 1, j] + 1; op[i, j] = Del; continue; }
                bool same = h[i - 1] == r[j - 1];
                // Tercom prefers match/substitution, then insertion, then deletion; sacreBLEU swaps the last two
                // because it reads the trace flipped.
                (long C, char O)[] ops = [(cost[i - 1, j - 1] + (same ? 0 : 1), same ? Nop : Sub), (cost[i - 1, j] + 1, Del), (cost[i, j - 1] + 1, Ins)];
                foreach (var (c, o) in ops)
                    if (cost[i, j] > c) { cost[i, j] = c; op[i, j] = o; }
            }
        }
        var trace = new System.Text.StringBuilder();
        for (int i = nh, j = nr; i > 0 || j > 0;)
        {
            char o = op[i, j];
            trace.Insert(0, o);
            if (o is Sub or Nop) { i--; j--; }
            else if (o == Ins) j--;
            else if (o == Del) i--;
            else throw new InvalidOperationException("TER trace left the beam.");
        }
        return (cost[nh, nr], trace.ToString());
    }
}
