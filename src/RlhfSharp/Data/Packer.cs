namespace RlhfSharp.Data;

/// <summary>
/// Packs SFT examples into fixed-length blocks (TRL's "wrapped" packing): examples are concatenated, each followed
/// by EOS unless it already ends with one, and the stream is cut every <c>blockLength</c> tokens, so an example may
/// span two blocks. Attention is not reset between examples (positions run on); the loss mask is carried along,
/// the added separators carry no loss.
/// </summary>
public static class Packer
{
    /// <summary>The blocks; the last one is shorter unless <paramref name="dropLast"/> drops it.</summary>
    /// <param name="examples">The examples, in order.</param>
    /// <param name="blockLength">Tokens per block.</param>
    /// <param name="eosId">The separator id.</param>
    /// <param name="dropLast">Drop a final block shorter than <paramref name="blockLength"/>.</param>
    public static List<SftExample> Pack(IEnumerable<SftExample> examples, int blockLength, int eosId, bool dropLast = false)
    {
        if (blockLength < 1) throw new RlhfException($"block length must be at least 1, got {blockLength}");
        var blocks = new List<SftExample>();
        var ids = new List<int>(blockLength);
        var mask = new List<bool>(blockLength);
        void Add(int id, bool m)
        {
            ids.Add(id);
            mask.Add(m);
            if (ids.Count < blockLength) return;
            blocks.Add(new SftExample(ids.ToArray(), mask.ToArray()));
            ids.Clear();
            mask.Clear();
        }
        foreach (var e in examples)
        {
            for (int i = 0; i < e.InputIds.Length; i++) Add(e.InputIds[i], e.LossMask[i]);
            if (e.InputIds.Length == 0 || e.InputIds[^1] != eosId) Add(eosId, false);
        }
        if (ids.Count > 0 && !dropLast) blocks.Add(new SftExample(ids.ToArray(), mask.ToArray()));
        return blocks;
    }
}
