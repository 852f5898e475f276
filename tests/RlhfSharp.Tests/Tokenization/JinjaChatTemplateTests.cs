using System.Text.Json.Nodes;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>
/// Real published chat templates (Qwen2.5, Llama 3, Zephyr, Gemma; fixtures/tokenizers/chat_templates) render as
/// transformers' apply_chat_template renders them. Expected text comes from Python's Jinja2 (render.py there).
/// </summary>
public sealed class JinjaChatTemplateTests
{
    private static string Dir => Path.Combine(RealTokenizerFiles.FixtureDir, "chat_templates");

    public static TheoryData<int> Cases()
    {
        var data = new TheoryData<int>();
        var count = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!["cases"]!.AsArray().Count;
        for (int i = 0; i < count; i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Real_chat_templates_render_as_jinja2_does(int index)
    {
        var c = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json")))!["cases"]![index]!;
        var template = ChatTemplate.ForModel(Path.Combine(Dir, (string)c["model"]!), null);
        Assert.Equal("jinja", template.Name);
        var messages = c["messages"]!.AsArray().Select(m => new ChatMessage((string)m!["role"]!, (string)m["content"]!)).ToList();
        bool addGenerationPrompt = (bool)c["add_generation_prompt"]!;
        if (c["error"] is JsonNode error)
        {
            var e = Assert.Throws<RlhfException>(() => template.Render(messages, addGenerationPrompt));
            Assert.Contains((string)error!, e.Message);
        }
        else Assert.Equal((string)c["rendered"]!, template.Render(messages, addGenerationPrompt));
    }

    [Fact]
    public void Assistant_spans_of_a_jinja_template_cover_the_answer_and_its_end_marker()
    {
        var template = ChatTemplate.ForModel(Path.Combine(Dir, "qwen2.5"), null);
        var rendered = template.RenderWithAssistantSpans([new("user", "Hi"), new("assistant", "Hello there")], false);
        var (start, length) = Assert.Single(rendered.AssistantSpans);
        Assert.Equal("Hello there<|im_end|>", rendered.Text.Substring(start, length));
    }

    [Fact]
    public void Jinja_subset_handles_filters_tests_namespace_and_python_string_methods()
    {
        var t = new JinjaTemplate("{%- set ns = namespace(n=0) -%}{% for x in items if x is not none %}{% set ns.n = ns.n + 1 %}{{ x | upper }}{{ ',' if not loop.last }}{% endfor %}|{{ ns.n }}|{{ ' a '.strip() }}|{{ items | length }}|{{ 7 % 3 }}|{{ undefinedvar is defined }}");
        Assert.Equal("A,B|2|a|3|1|False", t.Render(new Dictionary<string, object?> { ["items"] = new List<object?> { "a", null, "b" } }));
    }

    [Fact]
    public void A_template_syntax_error_names_the_line()
    {
        var e = Assert.Throws<RlhfException>(() => new JinjaTemplate("line one\n{% if %}x{% endif %}"));
        Assert.Contains("line 2", e.Message);
    }
}
