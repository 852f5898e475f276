using RlhfSharp.Data;
using RlhfSharp.Rewards;

namespace RlhfSharp.Pipeline;

/// <summary>
/// Process supervision on the built-in task: each story cut into sentences (the steps), each step labelled by the hidden
/// gold rubric. A step is scored as the gold of the story up to and including it (prompt + text through that sentence),
/// so fluency is read in context and a sentence that repeats an earlier one lowers non-repetition, as in the rubric of the
/// whole story; the last step's score is the story's own gold. A step is good (label 1) when that score reaches the
/// median over all steps of the data (balanced classes, PRM800K-style hard labels). Like Math-Shepherd's labels it asks
/// "is the solution still on a good track here"; unlike the annotators' rankings the labels carry no annotator noise.
/// </summary>
public static class SentenceStepLabels
{
    /// <returns>One step-labelled completion per (prompt, completion) with at least one sentence, and the threshold used.</returns>
    public static (List<StepwiseCompletion> Examples, double Threshold) Build(IRewardFunction gold, IReadOnlyList<string> prompts, IReadOnlyList<string> completions)
    {
        var owners = new List<int>();
        var prefixPrompts = new List<string>();
        var prefixes = new List<string>();
        var steps = new List<List<string>>();
        for (int i = 0; i < completions.Count; i++)
        {
            var spans = Sentences.Spans(completions[i]);
            steps.Add(spans.Select(s => completions[i].Substring(s.Start, s.Length)).ToList());
            foreach (var (start, length) in spans)
            {
                owners.Add(i);
                prefixPrompts.Add(prompts[i]);
                prefixes.Add(completions[i][..(start + length)]);
            }
        }
        if (prefixes.Count == 0) throw new RlhfException("process supervision: no sentences in the completions.");
        var scores = gold.Score(prefixPrompts, prefixes);
        var sorted = scores.Order().ToArray();
        double threshold = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        var labels = steps.Select(_ => new List<double>()).ToList();
        for (int k = 0; k < scores.Length; k++) labels[owners[k]].Add(scores[k] >= threshold ? 1 : 0);
        var examples = Enumerable.Range(0, completions.Count).Where(i => steps[i].Count > 0)
            .Select(i => new StepwiseCompletion(prompts[i], steps[i], labels[i])).ToList();
        return (examples, threshold);
    }
}
