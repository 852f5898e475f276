namespace RlhfSharp.Data;

/// <summary>
/// An unpaired judgement for KTO (Ethayarajh et al. 2024; TRL's unpaired preference format): the completion is
/// desirable (<paramref name="Label"/> true) or undesirable (false).
/// </summary>
public sealed record LabeledCompletion(string Prompt, string Completion, bool Label)
{
    /// <summary>TRL's <c>unpair_preference_dataset</c> maps over batches of this many rows (the <c>datasets</c> default).</summary>
    public const int UnpairBlock = 1000;

    /// <summary>
    /// Preference pairs as KTO examples, in TRL's order (<c>data_utils._unpair_row</c>, mapped in blocks of
    /// <see cref="UnpairBlock"/> rows): every chosen completion of a block (desirable), then every rejected one
    /// (undesirable). The KTO trainer shuffles them with the seed before it builds its KL pairs
    /// (<c>PreferenceTrainer.KtoOrder</c>), so its batches mix both labels.
    /// </summary>
    public static List<LabeledCompletion> Unpair(IReadOnlyList<Preference> pairs)
    {
        var result = new List<LabeledCompletion>(2 * pairs.Count);
        for (int start = 0; start < pairs.Count; start += UnpairBlock)
        {
            var block = pairs.Skip(start).Take(UnpairBlock).ToList();
            result.AddRange(block.Select(p => new LabeledCompletion(p.Prompt, p.Chosen, true)));
            result.AddRange(block.Select(p => new LabeledCompletion(p.Prompt, p.Rejected, false)));
        }
        return result;
    }
}
