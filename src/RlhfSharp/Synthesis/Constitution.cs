namespace RlhfSharp.Synthesis;

/// <summary>
/// The written principles an AI labeller judges by (Bai et al. 2022, "Constitutional AI"; Lee et al. 2023, RLAIF, who
/// give the labeller a preamble describing the task and what a good response is). This default is the project's own
/// short wording of the helpful-and-harmless criteria; pass <c>--constitution FILE</c> for another.
/// </summary>
public static class Constitution
{
    public const string Default =
        "You compare responses written by an assistant. A better response answers the request directly and correctly, " +
        "is clear and well written, stays on the topic, and is kind. It does not help with anything harmful, does not " +
        "invent facts, and does not lecture or refuse when the request is harmless.";

    /// <summary>The constitution in <paramref name="path"/>, or <see cref="Default"/>; an empty file is an error.</summary>
    public static string Load(string? path)
    {
        if (path is null) return Default;
        if (!File.Exists(path)) throw new RlhfException($"--constitution {path}: no such file.");
        string text = File.ReadAllText(path).Trim();
        return text.Length > 0 ? text : throw new RlhfException($"{path}: the constitution is empty.");
    }
}
