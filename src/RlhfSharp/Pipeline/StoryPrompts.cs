namespace RlhfSharp.Pipeline;

/// <summary>
/// Story openings for the "kinder stories" default, written by hand in TinyStories' vocabulary and combined
/// from templates, so there are thousands of distinct prompts and train/eval splits never share one.
/// </summary>
public static class StoryPrompts
{
    static readonly string[] Names = ["Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Sam", "Anna", "Tim", "Lucy", "Jack", "Sara", "Amy", "Bob", "Kitty", "Spot", "Mom", "Zoe", "Leo", "Emma"];
    static readonly string[] Characters = ["a little girl", "a little boy", "a small dog", "a big cat", "a little bird", "a tiny fish", "a happy frog", "a brave bear", "a shy bunny", "an old man", "a kind lady", "a little mouse"];
    static readonly string[] Places = ["park", "forest", "garden", "beach", "house", "pond", "school", "farm", "store", "river", "yard", "zoo"];
    static readonly string[] Things = ["ball", "toy", "box", "kite", "flower", "book", "hat", "cake", "boat", "car", "doll", "rock"];
    static readonly string[] Feelings = ["sad", "angry", "scared", "bored", "tired", "lonely"];

    static readonly Func<Random, string>[] Templates =
    [
        r => $"Once upon a time, there was {Pick(r, Characters)} named {Pick(r, Names)}.",
        r => $"One day, {Pick(r, Names)} went to the {Pick(r, Places)}.",
        r => $"{Pick(r, Names)} found a {Pick(r, Things)} in the {Pick(r, Places)}.",
        r => $"Once upon a time, {Pick(r, Names)} and {Pick(r, Names)} went to the {Pick(r, Places)}.",
        r => $"It was a sunny day. {Pick(r, Names)} wanted to play with a {Pick(r, Things)}.",
        r => $"{Pick(r, Names)} was very {Pick(r, Feelings)} because the {Pick(r, Things)} was lost.",
        r => $"There was {Pick(r, Characters)} who lived near the {Pick(r, Places)}.",
        r => $"One morning, {Pick(r, Names)} saw a big {Pick(r, Things)} in the {Pick(r, Places)}.",
        r => $"{Pick(r, Names)} did not want to share the {Pick(r, Things)}.",
        r => $"Once upon a time, in a small {Pick(r, Places)}, there lived {Pick(r, Characters)}.",
    ];

    static string Pick(Random r, string[] items) => items[r.Next(items.Length)];

    /// <summary>Distinct openings, the same list for the same seed; train and eval come from one list, split.</summary>
    public static (List<string> Train, List<string> Eval) Split(int train, int eval, int seed)
    {
        var rng = new Random(seed);
        var seen = new HashSet<string>();
        var all = new List<string>();
        for (int attempts = 0; all.Count < train + eval && attempts < 100 * (train + eval); attempts++)
        {
            string p = Templates[rng.Next(Templates.Length)](rng);
            if (seen.Add(p)) all.Add(p);
        }
        if (all.Count < train + eval) throw new RlhfException($"only {all.Count} distinct story openings exist; asked for {train} train + {eval} eval.");
        return (all.GetRange(0, train), all.GetRange(train, eval));
    }
}
