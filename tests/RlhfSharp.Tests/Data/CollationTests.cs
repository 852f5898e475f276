using RlhfSharp.Data;
using RlhfSharp.Tests.Tokenization;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Data;

/// <summary>Token ids and loss masks from demonstrations and preferences, with the stories260K tokenizer.</summary>
public class CollationTests
{
    private static readonly Llama2cTokenizer Tok = Stories260K.Tokenizer();

    private static int[] Masked(SftExample e) => e.InputIds.Where((_, i) => e.LossMask[i]).ToArray();

    [Fact]
    public void Sft_mask_covers_exactly_the_completion_tokens_and_eos()
    {
        const string prompt = "Once upon a time, there was a little girl.";
        const string completion = " She loved to play outside in the park.";
        var e = SftExample.FromPromptCompletion(Tok, prompt, completion, maxLength: 512, addBos: true);

        var promptIds = Tok.Encode(prompt, addBos: true);
        Assert.Equal(promptIds, e.InputIds[..promptIds.Length]);
        Assert.All(e.LossMask[..promptIds.Length], m => Assert.False(m));
        Assert.All(e.LossMask[promptIds.Length..], m => Assert.True(m));
        Assert.Equal(2, e.InputIds[^1]);
        Assert.Equal(completion, Tok.Decode(Masked(e)[..^1]));
        Assert.Equal(Tok.Encode(prompt + completion, addBos: true), e.InputIds[..^1]);
    }

    [Fact]
    public void Sft_truncation_keeps_the_prompt_head_and_cuts_the_completion_tail()
    {
        var full = SftExample.FromPromptCompletion(Tok, "Once upon a time", " there was a dog named Max.", 512, addBos: true);
        int promptLength = Array.IndexOf(full.LossMask, true);
        var cut = SftExample.FromPromptCompletion(Tok, "Once upon a time", " there was a dog named Max.", promptLength + 3, addBos: true);
        Assert.Equal(full.InputIds[..(promptLength + 3)], cut.InputIds);
        Assert.Equal(3, cut.LossTokenCount);
        Assert.NotEqual(2, cut.InputIds[^1]);

        var none = SftExample.FromPromptCompletion(Tok, "Once upon a time", " there was a dog.", promptLength, addBos: true);
        Assert.Equal(0, none.LossTokenCount);
    }

    [Fact]
    public void Messages_mask_covers_exactly_each_assistant_answer_and_the_end()
    {
        ChatMessage[] messages =
        [
            new("user", "Tell me a story."),
            new("assistant", "Once upon a time, there was a cat."),
            new("user", "More!"),
            new("assistant", "The cat was happy."),
        ];
        var template = ChatTemplate.FromName("hh");
        var e = SftExample.FromMessages(Tok, template, messages, 512, addBos: true);
        var rendered = template.RenderWithAssistantSpans(messages, addGenerationPrompt: false);

        Assert.Equal([.. Tok.Encode(rendered.Text, addBos: true), 2], e.InputIds);
        // Masked tokens form one run per assistant turn; each decodes to that turn's span, the last adds EOS.
        var runs = new List<int[]>();
        for (int i = 0; i < e.InputIds.Length; i++)
        {
            if (!e.LossMask[i]) continue;
            int j = i;
            while (j < e.InputIds.Length && e.LossMask[j]) j++;
            runs.Add(e.InputIds[i..j]);
            i = j;
        }
        Assert.Equal(2, runs.Count);
        Assert.Equal(" Once upon a time, there was a cat.", Tok.Decode(runs[0]));
        Assert.Equal(" The cat was happy.", Tok.Decode(runs[1][..^1]));
        Assert.Equal(2, runs[1][^1]);
        Assert.Equal(rendered.AssistantSpans.Select(s => rendered.Text.Substring(s.Start, s.Length)), [Tok.Decode(runs[0]), Tok.Decode(runs[1][..^1])]);
    }

    [Fact]
    public void Messages_mask_includes_the_template_end_marker()
    {
        ChatMessage[] messages = [new("user", "Hi"), new("assistant", "Hello there."), new("user", "Bye"), new("assistant", "Bye bye.")];
        var e = SftExample.FromMessages(Tok, ChatTemplate.FromName("llama2"), messages, 512, addBos: true);
        // "<s>" is written by the template: no second BOS.
        Assert.Equal(1, e.InputIds[0]);
        Assert.NotEqual(1, e.InputIds[1]);
        var masked = Masked(e);
        // Each answer ends with its " </s>" marker, trained so the model learns to stop; no EOS is added after it.
        Assert.Equal(2, masked.Count(id => id == 2));
        Assert.Equal(2, e.InputIds[^1]);
        Assert.True(e.LossMask[^1]);
        Assert.Contains("Hello there.", Tok.Decode(masked));
        Assert.Contains("Bye bye.", Tok.Decode(masked));
        Assert.DoesNotContain("Hi", Tok.Decode(masked));
        Assert.DoesNotContain("INST", Tok.Decode(masked));
    }

    [Fact]
    public void Demonstrations_from_messages_need_a_template()
    {
        var d = Demonstration.FromMessages([new("user", "Hi"), new("assistant", "Hello")]);
        Assert.Contains("chat template", Assert.Throws<RlhfException>(() => SftExample.Create(Tok, d, 64, addBos: true)).Message);
        Assert.True(SftExample.Create(Tok, d, 64, addBos: true, ChatTemplate.FromName("hh")).LossTokenCount > 0);
    }

    [Fact]
    public void Packing_preserves_tokens_and_masks()
    {
        var examples = new[]
        {
            SftExample.FromPromptCompletion(Tok, "Once upon a time", " there was a cat.", 512, addBos: true),
            SftExample.FromPromptCompletion(Tok, "Lily", " was happy.", 512, addBos: true, addEos: false),
            SftExample.FromPromptCompletion(Tok, "One day", ", Tom saw a big dog.", 512, addBos: true),
        };
        var blocks = Packer.Pack(examples, blockLength: 7, eosId: 2);
        Assert.All(blocks[..^1], b => Assert.Equal(7, b.InputIds.Length));

        // Expected stream: each example, plus an EOS separator (no loss) where it does not end with EOS already.
        var ids = new List<int>();
        var mask = new List<bool>();
        foreach (var e in examples)
        {
            ids.AddRange(e.InputIds); mask.AddRange(e.LossMask);
            if (e.InputIds[^1] != 2) { ids.Add(2); mask.Add(false); }
        }
        Assert.Equal(ids, blocks.SelectMany(b => b.InputIds));
        Assert.Equal(mask, blocks.SelectMany(b => b.LossMask));
        Assert.Equal(examples.Sum(e => e.LossTokenCount), blocks.Sum(b => b.LossTokenCount));

        var dropped = Packer.Pack(examples, blockLength: 7, eosId: 2, dropLast: true);
        Assert.Equal(ids.Count / 7, dropped.Count);
    }

    [Fact]
    public void Preference_examples_share_the_prompt_and_end_with_eos()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "data", "hh-rlhf-helpful-base-sample", "test-first200.jsonl.gz");
        var p = DatasetLoader.LoadPreferences(path).Records[0];
        var e = PreferenceExample.Create(Tok, p, maxLength: 4096, maxPromptLength: 2048, addBos: true);
        Assert.Equal(Tok.Encode(p.Prompt, addBos: true), e.PromptIds);
        Assert.Equal(2, e.ChosenIds[^1]);
        Assert.Equal(2, e.RejectedIds[^1]);
        Assert.Equal(p.Chosen, Tok.Decode(e.ChosenIds[..^1]));
        Assert.Equal(p.Rejected, Tok.Decode(e.RejectedIds[..^1]));
        Assert.Equal([.. e.PromptIds, .. e.ChosenIds], e.ChosenInputIds);
    }

    [Fact]
    public void Preference_truncation_keeps_the_prompt_end_and_the_completion_start()
    {
        var p = new Preference("Once upon a time, there was a little girl named Lily. She loved to play.", " She saw a big red ball.", " No.");
        var full = PreferenceExample.Create(Tok, p, 4096, 2048, addBos: true);
        var cut = PreferenceExample.Create(Tok, p, maxLength: 16, maxPromptLength: 10, addBos: true);
        Assert.Equal(10, cut.PromptIds.Length);
        Assert.Equal(1, cut.PromptIds[0]);
        Assert.Equal(full.PromptIds[^9..], cut.PromptIds[1..]);
        Assert.Equal(full.ChosenIds[..6], cut.ChosenIds);
        Assert.Equal(full.RejectedIds, cut.RejectedIds);
        Assert.True(cut.ChosenInputIds.Length <= 16);
        Assert.Throws<RlhfException>(() => PreferenceExample.Create(Tok, p, maxLength: 10, maxPromptLength: 10, addBos: true));
    }
}
