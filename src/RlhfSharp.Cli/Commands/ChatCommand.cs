using System.CommandLine;
using RlhfSharp.Checkpoints;
using RlhfSharp.Generation;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Cli.Commands;

/// <summary><c>rlhf chat</c>: a REPL that renders the conversation with the model's chat template and streams tokens.</summary>
public static class ChatCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Hub id (org/name[@revision]), HF folder, llama2.c .bin, or built-in name.", DefaultValueFactory = _ => "stories260k" };
        var template = new Option<string?>("--chat-template") { Description = $"Template name ({string.Join(", ", ChatTemplate.Names)}); default: the model's tokenizer_config.json, else plain." };
        var system = new Option<string?>("--system") { Description = "System prompt." };
        var dtype = DtypeOption.Create();
        var sampling = new SamplingArguments();
        var command = new Command("chat", "Talk to a model; tokens are printed as they are generated. Empty line or Ctrl-D quits.") { model, template, system, dtype };
        sampling.AddTo(command);
        command.SetAction(r => Program.Run(() =>
        {
            var options = sampling.Read(r);
            options.Validate();
            using var pretrained = PretrainedModel.Load(r.GetValue(model)!, DtypeOption.Read(r, dtype), kvCache: (1, options.MaxNewTokens));
            var chat = Directory.Exists(pretrained.Path)
                ? ChatTemplate.ForModel(pretrained.Path, r.GetValue(template))
                : ChatTemplate.FromName(r.GetValue(template) ?? "plain");
            var sampler = new Sampler(pretrained.Model, pretrained.Tokenizer);
            var messages = new List<ChatMessage>();
            if (r.GetValue(system) is string s) messages.Add(new ChatMessage("system", s));
            using var cancel = new CancellationTokenSource();
            int turn = 0;
            while (true)
            {
                Console.Write("> ");
                string? line = Console.ReadLine();
                if (string.IsNullOrEmpty(line)) return 0;
                messages.Add(new ChatMessage("user", line));
                var rendered = chat.RenderWithAssistantSpans(messages, addGenerationPrompt: true);
                var ids = pretrained.Tokenizer.EncodeWithSpecialTokens(rendered.Text,
                    addBos: pretrained.AddsBos && !rendered.Text.StartsWith("<s>") && !rendered.Text.StartsWith("<|begin_of_text|>"), rendered.ContentSpans);
                var generated = new List<int>();
                string shown = "";
                var completion = sampler.Generate([ids], options with { Seed = options.Seed + (ulong)turn++ }, (_, token) =>
                {
                    generated.Add(token);
                    string text = pretrained.Tokenizer.Decode(generated);
                    // Print only what is new; a partial UTF-8 sequence decodes to U+FFFD until its last byte arrives.
                    if (text.Length > shown.Length && !text.EndsWith('\uFFFD')) { Console.Write(text[shown.Length..]); shown = text; }
                }, cancel.Token)[0];
                if (completion.Text.Length > shown.Length) Console.Write(completion.Text[Math.Min(shown.Length, completion.Text.Length)..]);
                Console.WriteLine();
                messages.Add(new ChatMessage("assistant", completion.Text));
            }
        }));
        return command;
    }
}
