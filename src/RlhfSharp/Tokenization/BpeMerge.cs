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

        // The queue holds only (priority, left position) packed in a long: smaller is first, so equal priorities come
        // out leftmost. An entry is checked when it comes out: the pair now at that position must still merge at that
        // priority. Entries with the same key are interchangeable, so doing the current pair is always right.
        var heap = new LongHeap(n);
        void Push(int pos)
        {
            int r = next[pos];
            if (r < 0 || !lookup(id[pos], id[r], out int priority, out _)) return;
            heap.Push(((long)priority << 32) | (uint)pos);
            work++;
        }
        for (int i = 0; i < n - 1; i++) Push(i);

        while (heap.Count > 0)
        {
            long key = heap.Pop();
            work++;
            int pos = (int)(key & 0xFFFFFFFF);
            int r = next[pos];
            // Stale: the left symbol merged away (id -1), or the pair there no longer merges at this priority.
            if (id[pos] < 0 || r < 0 || !lookup(id[pos], id[r], out int priority, out int merged) || priority != (int)(key >> 32)) continue;
            id[pos] = merged;
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

    /// <summary>A binary min-heap of longs: the merge loop's queue without per-entry objects.</summary>
    private sealed class LongHeap(int capacity)
    {
        private long[] _items = new long[Math.Max(4, capacity)];
        public int Count { get; private set; }

        public void Push(long value)
        {
            if (Count == _items.Length) Array.Resize(ref _items, _items.Length * 2);
            int i = Count++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (_items[parent] <= value) break;
                _items[i] = _items[parent];
                i = parent;
            }
            _items[i] = value;
        }

        public long Pop()
        {
            long top = _items[0];
            long last = _items[--Count];
            int i = 0;
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= Count) break;
                if (child + 1 < Count && _items[child + 1] < _items[child]) child++;
                if (_items[child] >= last) break;
                _items[i] = _items[child];
                i = child;
            }
            if (Count > 0) _items[i] = last;
            return top;
        }
    }
}
