using System.Text.Json.Nodes;
using OpenAI.Chat;
using ChatMessage = OpenAI.Chat.ChatMessage; // not RlhfSharp.Tokenization's (a global using)

namespace RlhfSharp.Synthesis;

/// <summary>
/// Demonstrations written by a teacher for a file of prompts: the prompt/completion pairs <c>rlhf sft</c> reads, as
/// ChatLLaMA and Alpaca made SFT data from a stronger model. Prompts already answered in the output are skipped.
/// </summary>
public static class TeacherDemonstrations
{
    public static async Task RunAsync(Teacher teacher, IReadOnlyList<string> prompts, SynthJournal output, string? systemPrompt = null,
        Action<string>? report = null, CancellationToken cancel = default)
    {
        int total = prompts.Count;
        var todo = prompts.Select((p, i) => (Id: $"demo-{i}", Prompt: p)).Where(x => !output.IsDone(x.Id)).ToList();
        int done = total - todo.Count;
        await Task.WhenAll(todo.Select(async item =>
        {
            var messages = new List<ChatMessage>();
            if (systemPrompt is not null) messages.Add(new SystemChatMessage(systemPrompt));
            messages.Add(new UserChatMessage(item.Prompt));
            var reply = await teacher.AskAsync(messages, cancel: cancel);
            output.Append(new JsonObject { ["id"] = item.Id, ["prompt"] = item.Prompt, ["completion"] = reply.Text });
            report?.Invoke($"demonstrations: {Interlocked.Increment(ref done)}/{total} ({teacher.UsageLine()})");
        }));
    }
}
