using Microsoft.Data.Sqlite;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Labeling;
using RlhfSharp.Tests.Tokenization;

namespace RlhfSharp.Tests.Labeling;

/// <summary>
/// Issue 15, "export corrupts text": candidates were trimmed, so prompt + completion lost the space between them
/// ("She" + "loved" → "Sheloved") when a trainer joined them. The text must stay exactly as generated.
/// </summary>
public sealed class CandidateTextRoundTripTests
{
    [Fact]
    public void A_candidate_is_the_sampled_text_and_trains_on_the_sampled_tokens()
    {
        using var model = PretrainedModel.Load("stories260k");
        const string prompt = "Once upon a time, there was a little girl named";
        var options = new SamplingOptions { Temperature = 0, MaxNewTokens = 12 };
        var (_, responses) = CandidateGenerator.Generate(model, [prompt], 1, options).Single();
        var promptIds = model.EncodePrompt(prompt);
        using var batch = new Sampler(model.Model, model.Tokenizer).SampleGroups([promptIds], 1, options);
        var eos = model.Tokenizer.EosIds.ToHashSet();
        var sampled = batch.NewTokens[0].TakeWhile(t => !eos.Contains(t)).ToArray();
        string text = model.Tokenizer.Decode(sampled);
        Assert.StartsWith(" ", text); // the greedy continuation starts a new word: the space a trim removed
        Assert.Equal(text, responses[0]);
        // What a trainer builds from the exported pair: the prompt's tokens, then exactly the sampled ones, then EOS.
        var example = SftExample.FromPromptCompletion(model.Tokenizer, prompt, responses[0], 256, model.AddsBos);
        Assert.Equal([.. promptIds, .. sampled, model.Tokenizer.EosId!.Value], example.InputIds);
    }

    [Fact]
    public void A_labelled_pair_goes_through_the_export_file_to_the_sampled_tokens()
    {
        // The whole path a label takes: sampled candidates → the label store → an annotator's choice → the pairwise
        // export file → the loader → the tokens DPO and the reward model train on, which must be exactly the sampled ones.
        using var dir = new TempDir();
        using var model = PretrainedModel.Load("stories260k");
        const string prompt = "Once upon a time, there was a little girl named";
        var options = new SamplingOptions { Temperature = 1, MaxNewTokens = 10, Seed = 3 };
        var (_, responses) = CandidateGenerator.Generate(model, [prompt], 2, options).Single();
        Assert.Equal(2, responses.Count);
        var promptIds = model.EncodePrompt(prompt);
        // The same draw again (the generator seeds its first batch with the options' seed), kept as tokens: each
        // candidate's text → the tokens it was sampled as.
        using var batch = new Sampler(model.Model, model.Tokenizer).SampleGroups([promptIds], 2, options);
        var eos = model.Tokenizer.EosIds.ToHashSet();
        var sampled = Enumerable.Range(0, 2).Select(row => batch.NewTokens[row].TakeWhile(t => !eos.Contains(t)).ToArray())
            .ToDictionary(t => model.Tokenizer.Decode(t));
        Assert.Equal(responses.Order(), sampled.Keys.Order());

        string db = Path.Combine(dir.Path, "labels.db"), file = Path.Combine(dir.Path, "pairwise.jsonl");
        try
        {
            var store = LabelStore.Open(db);
            Assert.True(store.AddItem(prompt, responses, LabelTask.Pair, 1, "stories260k"));
            var annotator = store.Authenticate(store.AddAnnotator("a"))!;
            var item = store.Next(annotator, LabelTask.Pair)!;
            store.Submit(annotator, "1", new LabelSubmission { AssignmentId = item.AssignmentId, Choice = item.Responses.Single(r => r.Text == responses[1]).Id });
            Assert.Equal(1, LabelExport.Write(store.Labels(), LabelExportFormat.Pairwise, file));
        }
        finally { SqliteConnection.ClearAllPools(); }

        var pair = Assert.Single(DatasetLoader.LoadPreferences(file).Records);
        Assert.Equal(new Preference(prompt, responses[1], responses[0]), pair);
        var dpo = new RlhfSharp.Algorithms.Preference.DpoConfig(); // the lengths rlhf dpo and rlhf rm cut pairs to
        var example = PreferenceExample.Create(model.Tokenizer, pair, dpo.MaxLength, dpo.MaxPromptLength, model.AddsBos);
        int end = model.Tokenizer.EosId!.Value;
        Assert.Equal([.. promptIds, .. sampled[responses[1]], end], example.ChosenInputIds);
        Assert.Equal([.. promptIds, .. sampled[responses[0]], end], example.RejectedInputIds);
    }
}
