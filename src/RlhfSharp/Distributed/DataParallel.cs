namespace RlhfSharp.Distributed;

/// <summary>
/// What the trainers ask about data parallelism: this process's rank among <see cref="Size"/> copies started by
/// <c>mpirun</c>, its shard of each step's batch, and sums over every rank. Without <c>mpirun</c> it is one rank of
/// one: the shard is the whole batch, sums are the values themselves, and libmpi is never loaded.
/// </summary>
public static class DataParallel
{
    static readonly Lazy<MpiWorld?> world = new(MpiWorld.FromEnvironment);

    /// <summary>The MPI world, or null in a single process.</summary>
    public static MpiWorld? World => world.Value;
    public static int Rank => World?.Rank ?? 0;
    public static int Size => World?.Size ?? 1;
    /// <summary>Rank 0: the one that writes checkpoints, metrics and the console.</summary>
    public static bool IsRoot => Rank == 0;

    /// <summary>
    /// This rank's contiguous slice of <paramref name="items"/> (sizes differ by at most one, lower ranks first), so the
    /// ranks' slices in rank order are the whole list in its order.
    /// </summary>
    public static List<T> Shard<T>(IReadOnlyList<T> items) => Shard(items, Rank, Size);

    public static List<T> Shard<T>(IReadOnlyList<T> items, int rank, int size)
    {
        int start = (int)((long)items.Count * rank / size), end = (int)((long)items.Count * (rank + 1) / size);
        var shard = new List<T>(end - start);
        for (int i = start; i < end; i++) shard.Add(items[i]);
        return shard;
    }

    /// <summary>Where this rank's <see cref="Shard{T}(IReadOnlyList{T})"/> of <paramref name="count"/> items starts.</summary>
    public static int ShardStart(int count) => (int)((long)count * Rank / Size);

    /// <summary>Each value summed over every rank (the values themselves in one process).</summary>
    public static double[] Sum(params double[] values)
    {
        World?.SumInPlace(values);
        return values;
    }

    /// <summary>Named numbers summed over every rank, in their order (every rank passes the same names in the same order).</summary>
    public static Dictionary<string, double> Sum(IReadOnlyDictionary<string, double> values)
    {
        var keys = values.Keys.ToList();
        var sums = Sum(keys.Select(k => values[k]).ToArray());
        return keys.Select((k, i) => (k, sums[i])).ToDictionary(kv => kv.k, kv => kv.Item2);
    }

    /// <summary>
    /// Whether any rank was asked to stop (Ctrl-C, SIGTERM): every rank must agree, or those that go on would wait in
    /// the next all-reduce for those that saved and left.
    /// </summary>
    public static bool AnyCancelled(CancellationToken cancel) =>
        World is null ? cancel.IsCancellationRequested : Sum(cancel.IsCancellationRequested ? 1 : 0)[0] > 0;

    /// <summary>Waits for every rank (nothing in one process).</summary>
    public static void Barrier() => World?.Barrier();
}
