namespace RlhfSharp.Training;

/// <summary>
/// The order data is visited in: a permutation fixed by a seed, so a rerun or a resume sees the same batches.
/// </summary>
public static class SeededOrder
{
    /// <summary>A seeded permutation of 0..n−1.</summary>
    public static int[] Permutation(int n, ulong seed)
    {
        var order = Enumerable.Range(0, n).ToArray();
        new Random((int)(seed % int.MaxValue)).Shuffle(order);
        return order;
    }

    /// <summary>At most <paramref name="count"/> items, picked by a seeded permutation (a round of online training).</summary>
    public static List<T> Subset<T>(IReadOnlyList<T> items, int count, ulong seed) =>
        Permutation(items.Count, seed).Take(Math.Min(count, items.Count)).Select(i => items[i]).ToList();
}
