using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Generation;
using RlhfSharp.Labeling;

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
}
