using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace RlhfSharp.Tokenization;

/// <summary>
/// Turns a conversation into the prompt text a chat model was trained on. A model's own Jinja <c>chat_template</c>
/// (tokenizer_config.json or chat_template.jinja) is rendered with <see cref="JinjaTemplate"/> as transformers'
/// <c>apply_chat_template</c> does; the built-in formats (<see cref="Names"/>) are written out in C# and remain
/// available by name, and <see cref="Detect"/> still maps a Jinja template to one of them by its markers.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The names <see cref="FromName"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["chatml", "llama3", "llama2", "hh", "plain"];

    /// <summary>One of <see cref="Names"/>.</summary>
    public string Name { get; }

    /// <summary>ChatML only: the system message added when the conversation has none (Qwen2's template does this).</summary>
    public string? DefaultSystemPrompt { get; }

    private readonly JinjaTemplate? _jinja;
    private readonly Dictionary<string, object?> _specialTokens = [];

    private ChatTemplate(string name, string? defaultSystemPrompt = null)
    {
        Name = name;
        DefaultSystemPrompt = defaultSystemPrompt;
    }

    private ChatTemplate(JinjaTemplate jinja, IReadOnlyDictionary<string, string> specialTokens)
    {
        Name = "jinja";
        _jinja = jinja;
        foreach (var (key, value) in specialTokens) _specialTokens[key] = value;
    }

    /// <summary>
    /// A model's Jinja chat template, rendered as transformers' <c>apply_chat_template</c> does: <c>messages</c>,
    /// <c>add_generation_prompt</c> and the special tokens of tokenizer_config.json (<c>bos_token</c>, <c>eos_token</c>, …).
    /// </summary>
    /// <param name="template">The Jinja source.</param>
    /// <param name="specialTokens">Variables such as <c>bos_token</c> → <c>&lt;s&gt;</c>.</param>
    /// <exception cref="RlhfException">The template does not parse; the message names the line.</exception>
    public static ChatTemplate FromJinja(string template, IReadOnlyDictionary<string, string>? specialTokens = null) =>
        new(new JinjaTemplate(template), specialTokens ?? new Dictionary<string, string>());

    /// <summary>The template called <paramref name="name"/> (case-insensitive; see <see cref="Names"/>).</summary>
    /// <exception cref="RlhfException">Unknown name; the message lists the valid ones.</exception>
    public static ChatTemplate FromName(string name)
    {
        var key = name.Trim().ToLowerInvariant();
        return Names.Contains(key) ? new ChatTemplate(key)
            : throw new RlhfException($"unknown chat template \"{name}\"; valid names: {string.Join(", ", Names)}");
    }

    /// <summary>
    /// Recognises a Jinja chat template (tokenizer_config.json <c>chat_template</c>). Null or blank gives null.
    /// </summary>
    /// <exception cref="RlhfException">The template is not one of the known formats; pass --chat-template NAME.</exception>
    public static ChatTemplate? Detect(string? jinjaTemplate)
    {
        if (string.IsNullOrWhiteSpace(jinjaTemplate)) return null;
        var t = jinjaTemplate;
        if (t.Contains("<|im_start|>"))
        {
            // Qwen2: {{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }} when messages[0] is not a system turn.
            var defaultSystem = Regex.Match(t, @"'<\|im_start\|>system\\n([^'{}]*?)<\|im_end\|>");
            return new ChatTemplate("chatml", defaultSystem.Success ? Regex.Unescape(defaultSystem.Groups[1].Value) : null);
        }
        if (t.Contains("<|start_header_id|>"))
        {
            // Llama 3.1+ inserts "Cutting Knowledge Date" / tool blocks into the system turn: not Llama 3's format.
            if (t.Contains("Cutting Knowledge Date")) throw Unrecognised("a Llama 3.1+ template (it adds a dated system header)");
            return new ChatTemplate("llama3");
        }
        if (t.Contains("[INST]") && t.Contains("<<SYS>>")) return new ChatTemplate("llama2");
        if (t.Contains("Human:") && t.Contains("Assistant:")) return new ChatTemplate("hh");
        throw Unrecognised("a chat_template this library does not recognise");
    }

    private static RlhfException Unrecognised(string what) =>
        new($"the model's tokenizer_config.json has {what}; pass --chat-template NAME with one of: {string.Join(", ", Names)}");

    /// <summary>
    /// The template for a model: <paramref name="overrideName"/> if given; else the <c>chat_template</c> of
    /// <c>tokenizer_config.json</c> (or <c>chat_template.jinja</c>); else "plain", because a model that ships no chat
    /// template is a base model, prompted with plain text.
    /// </summary>
    public static ChatTemplate ForModel(string modelDir, string? overrideName)
    {
        if (!string.IsNullOrWhiteSpace(overrideName)) return FromName(overrideName);
        string? jinja = null;
        var specials = new Dictionary<string, string>();
        var configPath = Path.Combine(modelDir, "tokenizer_config.json");
        if (File.Exists(configPath))
        {
            JsonNode? config;
            try { config = JsonNode.Parse(File.ReadAllText(configPath)); }
            catch (System.Text.Json.JsonException e) { throw new RlhfException($"{configPath} is not valid JSON: {e.Message}", e); }
            // transformers passes the special tokens map (bos_token, eos_token, unk_token, pad_token, ...) as variables.
            foreach (var (key, value) in config as JsonObject ?? [])
            {
                if (!key.EndsWith("_token", StringComparison.Ordinal)) continue;
                var text = value switch { JsonValue v when v.TryGetValue(out string? str) => str, JsonObject o => (string?)o["content"], _ => null };
                if (text is not null) specials[key] = text;
            }
            jinja = config?["chat_template"] switch
            {
                JsonValue v => (string?)v,
                // A list of named templates: the "default" one is what apply_chat_template uses.
                JsonArray list => list.FirstOrDefault(x => (string?)x?["name"] == "default")?["template"]?.GetValue<string>(),
                _ => null,
            };
        }
        var jinjaPath = Path.Combine(modelDir, "chat_template.jinja");
        if (jinja is null && File.Exists(jinjaPath)) jinja = File.ReadAllText(jinjaPath);
        return string.IsNullOrWhiteSpace(jinja) ? new ChatTemplate("plain") : FromJinja(jinja, specials);
    }

    /// <summary>Renders <paramref name="messages"/>; <paramref name="addGenerationPrompt"/> appends the assistant header.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) =>
        RenderWithAssistantSpans(messages, addGenerationPrompt).Text;

    /// <summary>Renders like <see cref="Render"/> and reports where each assistant answer and each content lies.</summary>
    public RenderedChat RenderWithAssistantSpans(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        foreach (var m in messages)
            if (m.Role is not ("system" or "user" or "assistant"))
                throw new RlhfException($"chat message role \"{m.Role}\" is not system, user or assistant");
        if (_jinja is not null) return RenderJinja(messages, addGenerationPrompt);
        var output = new Output();
        switch (Name)
        {
            case "chatml": RenderChatMl(messages, addGenerationPrompt, output); break;
            case "llama3": RenderLlama3(messages, addGenerationPrompt, output); break;
            case "llama2": RenderLlama2(messages, output); break;
            case "hh": RenderHh(messages, addGenerationPrompt, output); break;
            default: foreach (var m in messages) output.Content(m.Content, m.Role == "assistant"); break;
        }
        return new RenderedChat(output.Text.ToString(), output.AssistantSpans, output.ContentSpans);
    }

    // Qwen2 tokenizer_config.json chat_template: '<|im_start|>' + role + '\n' + content + '<|im_end|>' + '\n' per
    // message, a default system turn first if none, and '<|im_start|>assistant\n' as the generation prompt.
    private void RenderChatMl(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, Output o)
    {
        if (DefaultSystemPrompt is not null && (messages.Count == 0 || messages[0].Role != "system"))
            o.Markup($"<|im_start|>system\n{DefaultSystemPrompt}<|im_end|>\n");
        foreach (var m in messages)
        {
            o.Markup($"<|im_start|>{m.Role}\n");
            o.Content(m.Content, m.Role == "assistant", endMarker: "<|im_end|>");
            o.Markup("\n");
        }
        if (addGenerationPrompt) o.Markup("<|im_start|>assistant\n");
    }

    // Meta Llama 3 model card / Meta-Llama-3-8B-Instruct chat_template: bos_token, then per message
    // '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content|trim + '<|eot_id|>'.
    private static void RenderLlama3(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, Output o)
    {
        o.Markup("<|begin_of_text|>");
        foreach (var m in messages)
        {
            o.Markup($"<|start_header_id|>{m.Role}<|end_header_id|>\n\n");
            o.Content(m.Content.Trim(), m.Role == "assistant", endMarker: "<|eot_id|>");
        }
        if (addGenerationPrompt) o.Markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    // Llama 2 chat (meta-llama/llama generation.py chat_completion and the HF Llama-2-chat chat_template): the
    // system prompt folds into the first user turn as "<<SYS>>\n{system}\n<</SYS>>\n\n"; each user turn is
    // "<s>[INST] {user} [/INST]" and each answer " {answer} </s>", contents stripped. The prompt already ends
    // where the answer starts, so there is no separate generation prompt.
    private static void RenderLlama2(IReadOnlyList<ChatMessage> messages, Output o)
    {
        string? system = messages.Count > 0 && messages[0].Role == "system" ? messages[0].Content : null;
        bool first = true;
        foreach (var m in messages.Skip(system is null ? 0 : 1))
        {
            if (m.Role == "user")
            {
                o.Markup("<s>[INST] ");
                if (first && system is not null)
                {
                    // Meta and HF strip the folded string as a whole, which starts with "<<SYS>>": only the user's end is trimmed.
                    o.Markup("<<SYS>>\n");
                    o.Content(system, isAssistant: false);
                    o.Markup("\n<</SYS>>\n\n");
                    o.Content(m.Content.TrimEnd(), isAssistant: false);
                }
                else o.Content(m.Content.Trim(), isAssistant: false);
                o.Markup(" [/INST]");
            }
            else if (m.Role == "assistant")
            {
                o.Markup(" ");
                o.Content(m.Content.Trim(), isAssistant: true, endMarker: " </s>");
            }
            else throw new RlhfException("llama2 chat template: a system message is only allowed first");
            first = false;
        }
    }

    // Anthropic HH-RLHF data format (Bai et al. 2022, the "chosen"/"rejected" strings of Anthropic/hh-rlhf):
    // "\n\nHuman: {user}\n\nAssistant: {answer}". The answer's leading space belongs to the answer, because the
    // generation prompt ends at "Assistant:" and the model writes " {answer}".
    private static void RenderHh(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, Output o)
    {
        foreach (var m in messages)
        {
            switch (m.Role)
            {
                case "system": o.Content(m.Content, isAssistant: false); break;
                case "user": o.Markup("\n\nHuman: "); o.Content(m.Content, isAssistant: false); break;
                default:
                    o.Markup("\n\nAssistant:");
                    o.Content(" " + m.Content, isAssistant: true);
                    break;
            }
        }
        if (addGenerationPrompt) o.Markup("\n\nAssistant:");
    }

    /// <summary>
    /// Renders the Jinja template and finds each message's content in the result, in order (a template may trim it).
    /// An assistant span covers the content and the marker right after it (<c>eos_token</c>, or a tag such as
    /// <c>&lt;|im_end|&gt;</c> or <c>&lt;end_of_turn&gt;</c>), as the built-in formats do.
    /// </summary>
    private RenderedChat RenderJinja(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var variables = new Dictionary<string, object?>(_specialTokens)
        {
            ["messages"] = messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        var text = _jinja!.Render(variables);
        var assistantSpans = new List<(int, int)>();
        var contentSpans = new List<(int, int)>();
        int position = 0;
        foreach (var m in messages)
        {
            var content = m.Content;
            int at = content.Length == 0 ? -1 : text.IndexOf(content, position, StringComparison.Ordinal);
            if (at < 0 && content.Trim().Length > 0) { content = content.Trim(); at = text.IndexOf(content, position, StringComparison.Ordinal); }
            if (at < 0) continue;
            contentSpans.Add((at, content.Length));
            position = at + content.Length;
            if (m.Role != "assistant") continue;
            int markerLength = 0;
            if (_specialTokens.TryGetValue("eos_token", out var eos) && eos is string e && e.Length > 0 && string.CompareOrdinal(text, position, e, 0, e.Length) == 0)
                markerLength = e.Length;
            else if (Regex.Match(text[position..], @"^<[|]?[A-Za-z_]+[|]?>") is { Success: true } tag) markerLength = tag.Length;
            assistantSpans.Add((at, content.Length + markerLength));
            position += markerLength;
        }
        return new RenderedChat(text, assistantSpans, contentSpans);
    }

    /// <summary>Accumulates the text and the spans; markup vs. content is what keeps user text from becoming specials.</summary>
    private sealed class Output
    {
        public StringBuilder Text { get; } = new();
        public List<(int Start, int Length)> AssistantSpans { get; } = [];
        public List<(int Start, int Length)> ContentSpans { get; } = [];

        public void Markup(string text) => Text.Append(text);

        public void Content(string content, bool isAssistant, string endMarker = "")
        {
            int start = Text.Length;
            Text.Append(content);
            ContentSpans.Add((start, content.Length));
            Text.Append(endMarker);
            if (isAssistant) AssistantSpans.Add((start, content.Length + endMarker.Length));
        }
    }
}
