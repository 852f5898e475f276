using System.Text.Json.Nodes;
using OpenAI.Chat;
using RlhfSharp.Data;

namespace RlhfSharp.Synthesis;

/// <summary>A prompt and the policy's responses to it, to be ranked.</summary>
public sealed record Candidates(string Prompt, IReadOnlyList<string> Responses);

/// <summary>
/// AI feedback (RLAIF; Bai et al. 2022, Lee et al. 2023): a teacher compares the policy's responses under a written
/// constitution. As in Lee et al. §2.1–2.2, each comparison first asks for a rationale (chain of thought, kept as the
/// reasons), then reads the preference from the teacher's log-probabilities of the tokens "1" and "2" (softmax over
/// the two), and averages both orders of the pair to cancel position bias. K responses are compared pairwise and
/// ranked by their summed win probability (a soft Borda count). Output: the ranking rows <c>rlhf rm</c> reads
/// (prompt, responses, ranking) or, with <c>pairwise</c>, best-versus-worst rows <c>rlhf dpo</c> reads; a prompt
/// whose every comparison stayed undecided is written to the skipped journal instead of inventing an order.
/// </summary>
public sealed class AiFeedback(Teacher teacher, string constitution, bool pairwise)
{
    /// <summary>Top candidates asked for with the verdict token; OpenAI's maximum is 20.</summary>
    const int TopLogprobs = 20;

    /// <summary>Reads prompt + responses rows (the ranking format without a ranking); errors name the line.</summary>
    public static List<Candidates> LoadCandidates(string path)
    {
        var list = new List<Candidates>();
        foreach (var raw in DatasetReader.Read(path))
        {
            if (raw.Error is not null) throw new RlhfException($"{raw.Where}: {raw.Error}");
            try
            {
                var row = new RowFields(raw.Fields!, FieldMap.None);
                var responses = row.StringList("responses");
                if (responses.Count < 2) throw new BadRowException($"field \"responses\" has {responses.Count}; AI feedback compares at least 2");
                list.Add(new Candidates(row.String("prompt", allowEmpty: true), responses));
            }
            catch (BadRowException e) { throw new RlhfException($"{raw.Where}: {e.Message}"); }
        }
        return list;
    }

    string Question(string prompt, string first, string second) =>
        $"{constitution}\n\nRequest:\n{prompt}\n\nResponse 1:\n{first}\n\nResponse 2:\n{second}\n\n" +
        "Explain briefly which response is better by these principles, and why.";

    /// <summary>
    /// P(response 1 is better) from the verdict's first-token log-probabilities: softmax over the tokens that read "1"
    /// and "2" (whitespace and SentencePiece/byte-level space markers ignored), or the verdict text when neither is
    /// among the top candidates; null when the verdict names neither.
    /// </summary>
    public static double? PreferenceForFirst(TeacherReply verdict)
    {
        double one = 0, two = 0;
        foreach (var (token, logprob) in verdict.FirstTokenLogprobs)
        {
            string t = token.Trim().Trim('▁', 'Ġ');
            if (t == "1") one += Math.Exp(logprob);
            else if (t == "2") two += Math.Exp(logprob);
        }
        if (one + two > 0) return one / (one + two);
        string text = verdict.Text.TrimStart();
        return text.StartsWith('1') ? 1 : text.StartsWith('2') ? 0 : null;
    }

    /// <summary>One order of one pair: the rationale, then the verdict. Returns P(first better) and the rationale.</summary>
    async Task<(double? P, string Reasons)> CompareAsync(string prompt, string first, string second, CancellationToken cancel)
    {
        var question = new UserChatMessage(Question(prompt, first, second));
        var rationale = await teacher.AskAsync([question], cancel: cancel);
        var verdict = await teacher.AskAsync(
            [question, new AssistantChatMessage(rationale.Text), new UserChatMessage("Which response is better? Answer with 1 or 2 only.")],
            maxTokens: 1, temperature: 0, topLogprobs: TopLogprobs, cancel: cancel);
        return (PreferenceForFirst(verdict), rationale.Text);
    }

    public async Task RunAsync(IReadOnlyList<Candidates> items, SynthJournal output, SynthJournal skipped, Action<string>? report = null,
        CancellationToken cancel = default)
    {
        var todo = items.Select((c, i) => (Id: $"feedback-{i}", c)).Where(x => !output.IsDone(x.Id) && !skipped.IsDone(x.Id)).ToList();
        int done = items.Count - todo.Count;
        await Task.WhenAll(todo.Select(async item =>
        {
            var (prompt, responses) = (item.c.Prompt, item.c.Responses);
            int k = responses.Count;
            var pairs = from i in Enumerable.Range(0, k) from j in Enumerable.Range(i + 1, k - i - 1) select (i, j);
            var results = await Task.WhenAll(pairs.Select(async p =>
            {
                var forward = await CompareAsync(prompt, responses[p.i], responses[p.j], cancel);
                var backward = await CompareAsync(prompt, responses[p.j], responses[p.i], cancel);
                var decided = new[] { forward.P, backward.P is double b ? 1 - b : null }.Where(x => x is not null).Select(x => x!.Value).ToList();
                return (p.i, p.j, P: decided.Count > 0 ? decided.Average() : (double?)null,
                    Reasons: new JsonArray(
                        new JsonObject { ["first"] = p.i, ["second"] = p.j, ["p_first"] = forward.P, ["reasons"] = forward.Reasons },
                        new JsonObject { ["first"] = p.j, ["second"] = p.i, ["p_first"] = backward.P, ["reasons"] = backward.Reasons }));
            }));
            var reasons = new JsonArray(results.SelectMany(r => r.Reasons.Select(x => x!.DeepClone())).ToArray());
            if (results.All(r => r.P is null))
            {
                skipped.Append(new JsonObject { ["id"] = item.Id, ["prompt"] = prompt, ["why"] = "the teacher's verdicts named neither response", ["reasons"] = reasons });
            }
            else
            {
                var wins = new double[k];
                foreach (var r in results) { double p = r.P ?? 0.5; wins[r.i] += p; wins[r.j] += 1 - p; }
                var ranking = Enumerable.Range(0, k).OrderByDescending(i => wins[i]).ThenBy(i => i).ToArray();
                var record = new JsonObject { ["id"] = item.Id, ["prompt"] = prompt };
                if (pairwise)
                {
                    record["chosen"] = responses[ranking[0]];
                    record["rejected"] = responses[ranking[^1]];
                }
                else
                {
                    record["responses"] = new JsonArray(responses.Select(r => (JsonNode)r).ToArray());
                    record["ranking"] = new JsonArray(ranking.Select(i => (JsonNode)i).ToArray());
                }
                record["preferences"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject { ["a"] = r.i, ["b"] = r.j, ["p_a_better"] = r.P }).ToArray());
                record["reasons"] = reasons;
                output.Append(record);
            }
            report?.Invoke($"feedback: {Interlocked.Increment(ref done)}/{items.Count} prompts ({teacher.UsageLine()})");
        }));
    }
}
