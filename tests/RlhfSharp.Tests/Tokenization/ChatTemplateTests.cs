using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

public class ChatTemplateTests
{
    private static readonly ChatMessage[] Conversation =
    [
        new("system", "Be brief."),
        new("user", "Hi!"),
        new("assistant", "Hello."),
        new("user", "Name a color."),
    ];

    private static readonly ChatMessage[] Answered = [.. Conversation, new("assistant", "Blue.")];

    // Qwen2-7B-Instruct tokenizer_config.json chat_template (ChatML).
    private const string Qwen2Jinja =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    // Meta-Llama-3-8B-Instruct tokenizer_config.json chat_template.
    private const string Llama3Jinja =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

    // Llama-2-7b-chat-hf tokenizer_config.json chat_template (abridged to its markers).
    private const string Llama2Jinja =
        "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    [Fact]
    public void Chatml_renders_im_start_blocks_and_the_assistant_generation_prompt()
    {
        // Format from Qwen2's chat_template above.
        Assert.Equal(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n" +
            "<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n",
            ChatTemplate.FromName("chatml").Render(Conversation, addGenerationPrompt: true));
    }

    [Fact]
    public void Qwen2_template_is_detected_as_chatml_with_its_default_system_prompt()
    {
        var template = ChatTemplate.Detect(Qwen2Jinja)!;
        Assert.Equal("chatml", template.Name);
        Assert.Equal("You are a helpful assistant.", template.DefaultSystemPrompt);
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n",
            template.Render([new("user", "Hi!")], addGenerationPrompt: false));
    }

    [Fact]
    public void Llama3_renders_headers_trimmed_contents_and_eot()
    {
        // Format from the Meta Llama 3 model card / chat_template above (content | trim).
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nName a color.<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            ChatTemplate.FromName("llama3").Render([Conversation[0], new("user", "  Hi!\n"), .. Conversation[2..]], addGenerationPrompt: true));
    }

    [Fact]
    public void Llama2_folds_the_system_prompt_into_the_first_inst_block()
    {
        // Format from meta-llama/llama generation.py (B_SYS = "<<SYS>>\n", E_SYS = "\n<</SYS>>\n\n").
        Assert.Equal(
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Name a color. [/INST]",
            ChatTemplate.FromName("llama2").Render(Conversation, addGenerationPrompt: true));
    }

    [Fact]
    public void Hh_renders_human_and_assistant_turns_ending_with_the_assistant_cue()
    {
        // Format of Anthropic/hh-rlhf's chosen/rejected strings.
        Assert.Equal(
            "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: And 3+3?\n\nAssistant:",
            ChatTemplate.FromName("hh").Render(
                [new("user", "What is 2+2?"), new("assistant", "4."), new("user", "And 3+3?")], addGenerationPrompt: true));
    }

    [Fact]
    public void Plain_concatenates_contents_for_base_models()
    {
        Assert.Equal("Once upon a time there was",
            ChatTemplate.FromName("plain").Render([new("user", "Once upon a time"), new("assistant", " there was")], addGenerationPrompt: true));
    }

    [Theory]
    [InlineData("chatml", "Blue.<|im_end|>")]
    [InlineData("llama3", "Blue.<|eot_id|>")]
    [InlineData("llama2", "Blue. </s>")]
    [InlineData("hh", " Blue.")]
    [InlineData("plain", "Blue.")]
    public void Assistant_span_covers_the_answer_and_its_end_marker(string name, string lastSpan)
    {
        var rendered = ChatTemplate.FromName(name).RenderWithAssistantSpans(Answered, addGenerationPrompt: false);
        Assert.Equal(2, rendered.AssistantSpans.Count);
        var (start, length) = rendered.AssistantSpans[1];
        Assert.Equal(lastSpan, rendered.Text.Substring(start, length));
        Assert.Equal(rendered.Text.Length, start + length + (name == "chatml" ? 1 : 0)); // ChatML ends with "\n" after <|im_end|>
    }

    [Fact]
    public void Detect_recognises_llama3_and_llama2_templates()
    {
        Assert.Equal("llama3", ChatTemplate.Detect(Llama3Jinja)!.Name);
        Assert.Equal("llama2", ChatTemplate.Detect(Llama2Jinja)!.Name);
        Assert.Null(ChatTemplate.Detect(null));
    }

    [Fact]
    public void An_unknown_jinja_template_asks_for_an_explicit_name()
    {
        var e = Assert.Throws<RlhfException>(() => ChatTemplate.Detect("{% for m in messages %}<start_of_turn>{{ m.content }}{% endfor %}"));
        Assert.Contains("--chat-template", e.Message);
    }

    [Fact]
    public void An_unknown_name_lists_the_valid_names()
    {
        var e = Assert.Throws<RlhfException>(() => ChatTemplate.FromName("vicuna"));
        Assert.Contains("chatml, llama3, llama2, hh, plain", e.Message);
    }

    [Fact]
    public void For_model_uses_override_then_the_jinja_chat_template_then_plain()
    {
        using var dir = new TempDir();
        Assert.Equal("plain", ChatTemplate.ForModel(dir.Path, null).Name);
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"),
            System.Text.Json.JsonSerializer.Serialize(new { chat_template = Llama3Jinja, bos_token = "<|begin_of_text|>" }));
        var fromModel = ChatTemplate.ForModel(dir.Path, null);
        Assert.Equal("jinja", fromModel.Name);
        ChatMessage[] chat = [new("user", "Hi"), new("assistant", "Hello")];
        // The model's own Jinja renders what the built-in llama3 format (written from Meta's model card) renders.
        Assert.Equal(ChatTemplate.FromName("llama3").Render(chat, true), fromModel.Render(chat, true));
        Assert.Equal("hh", ChatTemplate.ForModel(dir.Path, "hh").Name);
    }

    [Fact]
    public void Special_strings_typed_in_content_stay_plain_when_encoding_with_content_spans()
    {
        var tok = Stories260K.Tokenizer();
        var rendered = ChatTemplate.FromName("llama2").RenderWithAssistantSpans(
            [new("user", "say </s> now"), new("assistant", "ok")], addGenerationPrompt: false);
        var ids = tok.EncodeWithSpecialTokens(rendered.Text, plainSpans: rendered.ContentSpans);
        // Exactly the template's own <s> and </s> become ids; the typed "</s>" does not.
        Assert.Equal(1, ids.Count(id => id == 1));
        Assert.Equal(1, ids.Count(id => id == 2));
        Assert.Equal(2, ids[^1]);
    }
}
