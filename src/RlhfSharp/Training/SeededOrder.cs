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

    /// <summary>
    /// The items of one optimizer step of an epoch-based stage (SFT, RM, the preference family): the epoch's seeded
    /// permutation (<paramref name="seed"/> + epoch), cut into steps of <paramref name="perStep"/>; the last step of an
    /// epoch takes what is left.
    /// </summary>
    public static List<int> EpochBatch(int count, int perStep, int step, ulong seed)
    {
        int stepsPerEpoch = (count + perStep - 1) / perStep;
        var order = Permutation(count, seed + (ulong)(step / stepsPerEpoch));
        return Enumerable.Range((step % stepsPerEpoch) * perStep, perStep).Where(i => i < count).Select(i => order[i]).ToList();
    }

    /// <summary>
    /// The prompts of one step of an online stage (PPO, the group-RL family): always <paramref name="perStep"/> of them,
    /// from a seeded permutation renewed every ⌊count / perStep⌋ steps, wrapping around when it runs out.
    /// </summary>
    public static List<T> OnlineBatch<T>(IReadOnlyList<T> items, int perStep, int step, ulong seed)
    {
        int stepsPerEpoch = Math.Max(1, items.Count / perStep);
        var order = Permutation(items.Count, seed + (ulong)(step / stepsPerEpoch));
        return Enumerable.Range((step % stepsPerEpoch) * perStep, perStep).Select(i => items[order[i % items.Count]]).ToList();
    }

    /// <summary>At most <paramref name="count"/> items, picked by a seeded permutation (a round of online training).</summary>
    public static List<T> Subset<T>(IReadOnlyList<T> items, int count, ulong seed) =>
        Permutation(items.Count, seed).Take(Math.Min(count, items.Count)).Select(i => items[i]).ToList();
}
