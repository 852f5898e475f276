namespace RlhfSharp.Tokenization;

/// <summary>
/// The BPE merge loop shared by every tokenizer here: the symbols of a word sit in a linked list and the candidate
/// pairs in a priority queue, so a word of n symbols costs O(n log n) instead of the O(n²) of rescanning the word
/// after each merge (issue #16: 40k characters took 52 s that way).
/// </summary>
/// <remarks>
/// Order: the pair with the lowest priority merges first, and among equal priorities the leftmost. That is both
/// SentencePiece's <c>bpe_model.cc</c> (priority = the merged piece's score, higher first, ties to the left) and HF
/// tokenizers' <c>Word::merge_all</c> in <c>tokenizers/src/models/bpe/word.rs</c> (priority = the merge's rank, ties to
/// the lower position), and it gives exactly what the greedy rescan of llama2.c's <c>run.c</c> gives. A queue entry
/// goes stale when either symbol has merged since; it is checked against the current symbols when it comes out.
/// </remarks>
public static class BpeMerge
{
    /// <summary>How a pair of adjacent symbols merges.</summary>
    /// <param name="left">The left symbol's id.</param>
    /// <param name="right">The right symbol's id.</param>
    /// <param name="priority">Lower merges first (a merge rank, or a dense rank of the merged piece's score).</param>
    /// <param name="merged">The id of the merged symbol.</param>
    /// <returns>False when the pair does not merge.</returns>
    public delegate bool PairLookup(int left, int right, out int priority, out int merged);

    /// <summary>Merges <paramref name="symbols"/> in place and returns how many symbols remain at its start.</summary>
    /// <param name="symbols">The initial symbol ids; on return the first N entries are the merged ids.</param>
    /// <param name="lookup">The merge table.</param>
    /// <param name="queueOperations">Pairs pushed plus pairs popped: the work done, which tests check grows linearly.</param>
    public static int Merge(Span<int> symbols, PairLookup lookup, out long queueOperations)
    {
        int n = symbols.Length;
        queueOperations = 0;
        long work = 0;
        if (n < 2) return n;
        var next = new int[n];
        var prev = new int[n];
        var id = symbols.ToArray();
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }

        // Element: (left position, left id, right id, merged id); priority: (priority, left position).
        var queue = new PriorityQueue<(int Pos, int Left, int Right, int Merged), long>();
        void Push(int pos)
        {
            int r = next[pos];
            if (r < 0 || !lookup(id[pos], id[r], out int priority, out int merged)) return;
            queue.Enqueue((pos, id[pos], id[r], merged), ((long)priority << 32) | (uint)pos);
            work++;
        }
        for (int i = 0; i < n - 1; i++) Push(i);

        while (queue.TryDequeue(out var top, out _))
        {
            work++;
            int pos = top.Pos;
            int r = next[pos];
            // Stale: the left symbol is gone (id -1) or changed, or its right neighbour changed.
            if (id[pos] != top.Left || r < 0 || id[r] != top.Right) continue;
            id[pos] = top.Merged;
            id[r] = -1;
            next[pos] = next[r];
            if (next[r] >= 0) prev[next[r]] = pos;
            if (prev[pos] >= 0) Push(prev[pos]);
            Push(pos);
        }

        queueOperations = work;
        int count = 0;
        for (int i = 0; i >= 0; i = next[i]) symbols[count++] = id[i];
        return count;
    }
}
