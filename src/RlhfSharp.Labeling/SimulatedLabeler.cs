using RlhfSharp.Rewards;

namespace RlhfSharp.Labeling;

/// <summary>
/// A <see cref="SimulatedAnnotator"/> (the pipeline's noisy Bradley–Terry / Plackett–Luce labeller) working through the
/// labelling API like a person: it fetches its next assignment, judges the responses by the hidden gold score, and
/// submits with an idempotency key. It does rank, pair and rate items; demonstrations need a writer, so it leaves them.
/// </summary>
public sealed class SimulatedLabeler(LabelingClient client, SimulatedAnnotator annotator, IRewardFunction gold)
{
    /// <summary>The tasks a simulated annotator can do.</summary>
    public static IReadOnlyList<string> Tasks { get; } = ["rank", "pair", "rate"];

    /// <summary>Labels up to <paramref name="max"/> items (0 = until none is left) and returns how many were acknowledged.</summary>
    public async Task<int> RunAsync(int max = 0, CancellationToken cancel = default)
    {
        int done = 0;
        foreach (var task in Tasks)
        {
            while (max == 0 || done < max)
            {
                var assignment = await client.NextAsync(task, cancel);
                if (assignment is null) break;
                var reply = await client.SubmitWithRetryAsync(Judge(assignment), Guid.NewGuid().ToString("N"), TimeSpan.FromMinutes(1), cancel);
                if (!reply.Acknowledged) throw new RlhfException($"the server refused a simulated label ({reply.Status}: {reply.Error})");
                done++;
            }
        }
        return done;
    }

    /// <summary>
    /// Why items are left that this annotator did not label, from its <see cref="Progress"/> after a run: places held by
    /// other annotators' open assignments, demonstrations (which need a writer), skips. "Nothing is left" when none is.
    /// </summary>
    public static string WhatIsLeft(Progress after)
    {
        var reasons = new List<string>();
        if (after.HeldByOthers > 0)
            reasons.Add($"{after.HeldByOthers} item(s) still need labels, but other annotators' open assignments hold their places " +
                "(a place frees when its annotator labels or skips the item, or when the assignment times out: 30 min by default)");
        if (after.AvailableByTask.GetValueOrDefault("demo") is > 0 and var demos)
            reasons.Add($"{demos} demo item(s) need a writer; simulated annotators only rank, compare and rate");
        if (after.Skipped > 0) reasons.Add($"{after.Skipped} item(s) skipped by this annotator");
        return reasons.Count == 0 ? "nothing is left for this annotator: every item has its labels or was labelled by them" : string.Join("; ", reasons);
    }

    /// <summary>This annotator's label for one assignment.</summary>
    public LabelSubmission Judge(Assignment assignment)
    {
        var responses = assignment.Responses;
        var scores = gold.Score(Enumerable.Repeat(assignment.Prompt, responses.Count).ToArray(), responses.Select(r => r.Text).ToArray());
        var utilities = scores.Select((g, i) => annotator.Utility(g, responses[i].Text)).ToArray();
        switch (assignment.Task)
        {
            case "rank":
                return new LabelSubmission { AssignmentId = assignment.AssignmentId, Ranking = annotator.Rank(utilities).Select(i => responses[i].Id).ToArray() };
            case "pair":
                return new LabelSubmission { AssignmentId = assignment.AssignmentId, Choice = responses[annotator.Choose(utilities[0], utilities[1])].Id };
            case "rate":
                // Likert 4 is "as good as the others here"; each τ of utility above or below moves one point.
                double mean = utilities.Average(), tau = Math.Max(annotator.Temperature, 1e-6);
                return new LabelSubmission
                {
                    AssignmentId = assignment.AssignmentId,
                    Ratings = responses.Select((r, i) => new Rating(r.Id, (int)Math.Clamp(Math.Round(4 + (utilities[i] - mean) / tau), LabelSubmission.MinQuality, LabelSubmission.MaxQuality), [])).ToArray(),
                };
            default:
                throw new RlhfException($"a simulated annotator cannot do a {assignment.Task} item");
        }
    }
}
