using System.CommandLine;
using RlhfSharp.Checkpoints;
using RlhfSharp.Server;
using RlhfSharp.Tokenization;

namespace RlhfSharp.Cli.Commands;

/// <summary><c>rlhf serve</c>: an OpenAI-compatible HTTP server (chat/completions, completions, models) for one model.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Hub id (org/name[@revision]), HF folder, llama2.c .bin, or built-in name (stories260k).", DefaultValueFactory = _ => "stories260k" };
        var urls = new Option<string>("--urls") { Description = "Addresses to listen on, ';'-separated.", DefaultValueFactory = _ => "http://127.0.0.1:8000" };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on every request (default: env RLHF_API_KEY, else none)." };
        var template = new Option<string?>("--chat-template") { Description = $"Template name ({string.Join(", ", ChatTemplate.Names)}); default: the model's tokenizer_config.json, else plain." };
        var maxTokens = new Option<int>("--max-tokens-cap") { Description = "Largest max_tokens a request may ask for.", DefaultValueFactory = _ => 1024 };
        var dtype = DtypeOption.Create();
        var ilqlBeta = IlqlBetaOption.Create();
        var command = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API (requests share one batched generation loop).") { model, urls, apiKey, template, maxTokens, dtype, ilqlBeta };
        command.SetAction(r => Program.Run(() =>
        {
            // An encoder-decoder (T5): the prompt (or the rendered chat) is the encoder's input, the reply the decoder's tokens.
            using var t5 = PretrainedSeq2SeqModel.IsSeq2Seq(r.GetValue(model)!) ? PretrainedSeq2SeqModel.Load(r.GetValue(model)!, DtypeOption.Read(r, dtype)) : null;
            if (t5 is not null) IlqlBetaOption.Apply(r, ilqlBeta, t5);
            using var causal = t5 is null ? PretrainedModel.Load(r.GetValue(model)!, DtypeOption.Read(r, dtype), kvCache: (1, r.GetValue(maxTokens))) : null;
            if (causal is not null) IlqlBetaOption.Apply(r, ilqlBeta, causal);
            RlhfSharp.Generation.ITextGenerator pretrained = t5 is not null ? new RlhfSharp.Generation.Seq2SeqTextGenerator(t5) : new RlhfSharp.Generation.CausalTextGenerator(causal!);
            var options = new ServerOptions
            {
                Urls = r.GetValue(urls)!,
                ApiKey = r.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("RLHF_API_KEY"),
                ModelName = r.GetValue(model)!,
                MaxTokensCap = r.GetValue(maxTokens),
            };
            var chat = r.GetValue(template) is string name ? ChatTemplate.FromName(name) : null;
            var server = OpenAiServer.StartAsync(pretrained, options, chat).GetAwaiter().GetResult();
            foreach (var warning in server.Warnings) Console.Error.WriteLine($"warning: {warning}");
            Console.Error.WriteLine($"serving {pretrained.Path} on {string.Join(", ", server.Urls)} (OpenAI API under /v1); Ctrl+C stops.");
            server.WaitForShutdownAsync().GetAwaiter().GetResult();
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        }));
        return command;
    }
}
