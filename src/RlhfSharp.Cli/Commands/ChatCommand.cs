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
        var command = new Command("chat", "Talk to a model; tokens are printed as they are generated. /help lists the commands; Ctrl-C stops a reply; an empty line or Ctrl-D quits.") { model, template, system, dtype };
        sampling.AddTo(command);
        command.SetAction(r => Program.Run(() =>
        {
            var options = sampling.Read(r);
            options.Validate();
            // An encoder-decoder (T5) reads the rendered conversation with its encoder and answers with its decoder.
            using var t5 = PretrainedSeq2SeqModel.IsSeq2Seq(r.GetValue(model)!) ? PretrainedSeq2SeqModel.Load(r.GetValue(model)!, DtypeOption.Read(r, dtype)) : null;
            if (t5 is not null) IlqlHeadsFile.AttachIfPresent(t5.Model, t5.Path); // as PretrainedModel.Load does for decoder-only models
            using var causal = t5 is null ? PretrainedModel.Load(r.GetValue(model)!, DtypeOption.Read(r, dtype), kvCache: (1, options.MaxNewTokens)) : null;
            ITextGenerator pretrained = t5 is not null ? new Seq2SeqTextGenerator(t5) : new CausalTextGenerator(causal!);
            var chat = Directory.Exists(pretrained.Path)
                ? ChatTemplate.ForModel(pretrained.Path, r.GetValue(template))
                : ChatTemplate.FromName(r.GetValue(template) ?? "plain");
            var messages = new List<ChatMessage>();
            string? systemPrompt = r.GetValue(system);
            if (systemPrompt is not null) messages.Add(new ChatMessage("system", systemPrompt));
            Console.Error.WriteLine($"chat with {pretrained.Path} (template {chat.Name}, up to {options.MaxNewTokens} new tokens a reply). /help for commands; Ctrl-C stops a reply, Ctrl-D or an empty line quits.");
            // Ctrl-C stops the reply being generated and keeps the session (as in ollama and llama.cpp's chat); at the prompt it quits.
            CancellationTokenSource? replying = null;
            ConsoleCancelEventHandler onCancel = (_, e) => { if (replying is { } c) { e.Cancel = true; c.Cancel(); } };
            Console.CancelKeyPress += onCancel;
            // At a terminal: line editing and history (LineEditor); from a pipe or file, plain lines.
            var editor = Console.IsInputRedirected || Console.IsOutputRedirected ? null : new LineEditor(() => Console.ReadKey(intercept: true), Console.Out);
            try
            {
                int turn = 0;
                while (true)
                {
                    string? line;
                    // Not disposed: the Ctrl-C handler runs on another thread and may still hold it; it has no timer to free.
                    var cancel = new CancellationTokenSource();
                    replying = null;
                    if (editor is null) { Console.Write("> "); line = Console.ReadLine(); replying = cancel; }
                    else
                    {
                        // While typing, Ctrl-C is a key (drop the line, as in bash); once the line is sent it is the signal that
                        // stops the reply, so it is armed before the terminal turns Ctrl-C back into SIGINT: a Ctrl-C typed while
                        // the prompt is being encoded stops the reply before it starts instead of finding nothing to stop.
                        Console.TreatControlCAsInput = true;
                        try { line = editor.ReadLine("> "); }
                        finally { replying = cancel; Console.TreatControlCAsInput = false; }
                    }
                    if (string.IsNullOrEmpty(line)) return 0;
                    if (line.StartsWith('/'))
                    {
                        // Commands are never sent to the model.
                        string name = line.Split(' ', 2)[0], argument = line.Length > name.Length ? line[(name.Length + 1)..].Trim() : "";
                        switch (name)
                        {
                            case "/help":
                                Console.WriteLine("/help  this list\n/reset  forget the conversation (the system prompt stays)\n/system TEXT  set the system prompt (empty: none)\n" +
                                                  "/save FILE  write the conversation as JSON ({\"messages\": [...]}, TRL's conversational format)\nan empty line or Ctrl-D quits; Ctrl-C stops a reply" +
                                                  (editor is null ? "" : "\nediting: ←/→ Home/End, ↑/↓ earlier lines, Ctrl-U/Ctrl-K delete to start/end, Ctrl-W a word, Ctrl-C drops the line"));
                                break;
                            case "/reset":
                                messages.RemoveAll(m => m.Role != "system");
                                Console.WriteLine("(conversation cleared)");
                                break;
                            case "/system":
                                messages.RemoveAll(m => m.Role == "system");
                                if (argument.Length > 0) messages.Insert(0, new ChatMessage("system", argument));
                                Console.WriteLine(argument.Length > 0 ? "(system prompt set)" : "(system prompt removed)");
                                break;
                            case "/save" when argument.Length > 0:
                                var json = new System.Text.Json.Nodes.JsonObject
                                {
                                    ["messages"] = new System.Text.Json.Nodes.JsonArray(messages.Select(m => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()),
                                };
                                File.WriteAllText(argument, json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
                                Console.WriteLine($"(saved {messages.Count} messages to {argument})");
                                break;
                            default:
                                Console.WriteLine($"unknown command {name}{(name == "/save" ? ": give a file, /save chat.json" : "")}; /help lists them");
                                break;
                        }
                        continue;
                    }
                    messages.Add(new ChatMessage("user", line));
                    var rendered = chat.RenderWithAssistantSpans(messages, addGenerationPrompt: true);
                    var ids = pretrained.EncodeChat(rendered);
                    // The conversation grows every turn; the reply gets the positions left rather than ending the session
                    // with the sampler's error (ollama and llama.cpp's chat also keep going when the context fills).
                    int positions = pretrained.MaxPromptTokens, room = pretrained.ReplyRoom(ids.Length);
                    if (room <= 0)
                    {
                        messages.RemoveAt(messages.Count - 1);
                        Console.Error.WriteLine($"(the conversation fills the model's {positions} positions: /reset starts over)");
                        continue;
                    }
                    var turnOptions = options with
                    {
                        Seed = options.Seed + (ulong)turn++,
                        MaxNewTokens = Math.Min(options.MaxNewTokens, room),
                        MinNewTokens = Math.Min(options.MinNewTokens, room),
                    };
                    var generated = new List<int>();
                    string shown = "";
                    Completion? completion = null;
                    try
                    {
                        completion = pretrained.Generate([ids], turnOptions, (_, token) =>
                        {
                            generated.Add(token);
                            string text = pretrained.Tokenizer.Decode(generated);
                            // Print only what is new; a partial UTF-8 sequence decodes to U+FFFD until its last byte arrives.
                            if (text.Length > shown.Length && !text.EndsWith('\uFFFD')) { Console.Write(text[shown.Length..]); shown = text; }
                        }, cancel.Token)[0];
                    }
                    catch (OperationCanceledException) when (cancel.IsCancellationRequested) { }
                    finally { replying = null; }
                    string reply = completion?.Text ?? shown;
                    if (reply.Length > shown.Length) Console.Write(reply[shown.Length..]);
                    Console.WriteLine();
                    if (completion is null) Console.Error.WriteLine("(stopped)");
                    else if (completion.FinishReason == FinishReason.Length)
                        Console.Error.WriteLine(turnOptions.MaxNewTokens < options.MaxNewTokens
                            ? $"(cut at {turnOptions.MaxNewTokens} tokens: the conversation fills the model's {positions} positions; /reset starts over)"
                            : $"(cut at {options.MaxNewTokens} tokens: --max-new-tokens sets the limit)");
                    messages.Add(new ChatMessage("assistant", reply));
                }
            }
            finally { Console.CancelKeyPress -= onCancel; }
        }));
        return command;
    }
}
