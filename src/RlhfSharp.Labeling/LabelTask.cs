namespace RlhfSharp.Labeling;

/// <summary>What an annotator is asked to do with one item (InstructGPT's and OpenAssistant's labelling tasks).</summary>
public enum LabelTask
{
    /// <summary>Order K responses best to worst (InstructGPT's K-wise comparison, K = 4..9).</summary>
    Rank,
    /// <summary>Choose the better of two responses.</summary>
    Pair,
    /// <summary>Rate each response on a 1–7 Likert scale and flag problems (InstructGPT's metadata ratings).</summary>
    Rate,
    /// <summary>Write, or edit a draft of, the response the model should give (an SFT demonstration).</summary>
    Demonstrate,
}

/// <summary>The wire and database names of <see cref="LabelTask"/>.</summary>
public static class LabelTasks
{
    public static string Name(this LabelTask task) => task switch
    {
        LabelTask.Rank => "rank",
        LabelTask.Pair => "pair",
        LabelTask.Rate => "rate",
        _ => "demo",
    };

    public static IReadOnlyList<string> Names { get; } = ["rank", "pair", "rate", "demo"];

    /// <summary>The task called <paramref name="name"/>, or null.</summary>
    public static LabelTask? Parse(string? name) => name switch
    {
        "rank" => LabelTask.Rank,
        "pair" => LabelTask.Pair,
        "rate" => LabelTask.Rate,
        "demo" => LabelTask.Demonstrate,
        _ => null,
    };
}
