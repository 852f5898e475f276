using System.Text.Json;
using System.Text.Json.Serialization;

namespace RlhfSharp.Labeling;

/// <summary>One Likert rating of one response: quality 1 (terrible) to 7 (excellent), plus flags.</summary>
public sealed record Rating(long ResponseId, int Quality, string[]? Flags = null);

/// <summary>
/// A label as the client sends it (<c>POST /api/labels</c>) and as the database stores it. Exactly the field of the
/// item's task is set: <see cref="Ranking"/> (response ids, best first), <see cref="Choice"/> (the better response id) or
/// <see cref="Tie"/> (neither is better), <see cref="Ratings"/> (one per response) or <see cref="Demonstration"/> (the text).
/// </summary>
public sealed record LabelSubmission
{
    public long AssignmentId { get; init; }
    public long[]? Ranking { get; init; }
    public long? Choice { get; init; }
    /// <summary>
    /// A pair judged equally good (or equally bad): Anthropic's HH interface and Argilla's ranking allow it. A tie is kept
    /// and counted, but no preference file takes one (TRL's pairs need a chosen and a rejected), so exports leave it out.
    /// </summary>
    public bool? Tie { get; init; }
    public Rating[]? Ratings { get; init; }
    public string? Demonstration { get; init; }

    /// <summary>The flags a rating may carry (InstructGPT's metadata: harmful, factually wrong, off-topic).</summary>
    public static IReadOnlyList<string> KnownFlags { get; } = ["harmful", "wrong", "off_topic"];

    /// <summary>The quality scale: 1..7, as InstructGPT's overall-quality Likert rating.</summary>
    public const int MinQuality = 1, MaxQuality = 7;

    /// <summary>snake_case on the wire; unknown fields refused so a typo cannot silently drop a label's content.</summary>
    public static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = 8,
    };

    /// <summary>
    /// Why this label does not fit <paramref name="task"/> with candidate <paramref name="responseIds"/>, or null when it
    /// does. The checks are complete: a label that passes can be exported without further tests.
    /// </summary>
    public string? Problem(LabelTask task, IReadOnlyList<long> responseIds, LabelLimits limits)
    {
        int set = (Ranking is null ? 0 : 1) + (Choice is null ? 0 : 1) + (Tie is true ? 1 : 0) + (Ratings is null ? 0 : 1) + (Demonstration is null ? 0 : 1);
        if (set != 1) return $"a {task.Name()} label carries exactly one of ranking, choice, tie, ratings or demonstration (got {set})";
        if (Tie is true && task != LabelTask.Pair) return "'tie' is for pair items only";
        var ids = responseIds.ToHashSet();
        switch (task)
        {
            case LabelTask.Rank:
                if (Ranking is null) return "a rank label needs 'ranking': the response ids, best first";
                if (Ranking.Length != ids.Count || Ranking.Distinct().Count() != ids.Count || !Ranking.All(ids.Contains))
                    return $"'ranking' must list each of the {ids.Count} response ids exactly once";
                return null;
            case LabelTask.Pair:
                if (Tie is true) return null;
                if (Choice is not long c) return "a pair label needs 'choice': the id of the better response (or 'tie': true)";
                return ids.Contains(c) ? null : "'choice' is not one of the item's response ids";
            case LabelTask.Rate:
                if (Ratings is null) return "a rate label needs 'ratings': one {response_id, quality, flags} per response";
                if (Array.IndexOf(Ratings, null) is int hole and >= 0) return $"'ratings[{hole}]' is null: give one {{response_id, quality, flags}} object per response";
                if (Ratings.Length != ids.Count || Ratings.Select(r => r.ResponseId).Distinct().Count() != ids.Count || !Ratings.All(r => ids.Contains(r.ResponseId)))
                    return $"'ratings' must rate each of the {ids.Count} responses exactly once";
                foreach (var r in Ratings)
                {
                    if (r.Quality is < MinQuality or > MaxQuality) return $"'quality' must be {MinQuality}..{MaxQuality}, got {r.Quality}";
                    var flags = r.Flags ?? [];
                    if (flags.Length > limits.MaxFlags || flags.Distinct().Count() != flags.Length || !flags.All(KnownFlags.Contains))
                        return $"'flags' may hold each of {string.Join(", ", KnownFlags)} at most once";
                }
                return null;
            default:
                if (Demonstration is null) return "a demo label needs 'demonstration': the response the model should give";
                if (Demonstration.Trim().Length == 0) return "'demonstration' is empty";
                if (Demonstration.Length > limits.MaxDemonstrationChars)
                    return $"'demonstration' has {Demonstration.Length} characters, over the limit of {limits.MaxDemonstrationChars}";
                return Demonstration.Contains('\0') ? "'demonstration' contains a NUL character" : null;
        }
    }

    /// <summary>The stored form: the task's field alone (the assignment id lives in its own column).</summary>
    public string ToStoredJson() => JsonSerializer.Serialize(this with { AssignmentId = 0 }, Json);

    public static LabelSubmission FromStoredJson(string json) => JsonSerializer.Deserialize<LabelSubmission>(json, Json)!;
}
