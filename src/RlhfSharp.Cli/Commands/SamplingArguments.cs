using System.CommandLine;
using RlhfSharp.Generation;

namespace RlhfSharp.Cli.Commands;

/// <summary>The sampling options shared by <c>generate</c>, <c>chat</c>, <c>eval</c> and <c>label generate</c>.</summary>
/// <param name="defaultSeed">
/// The seed without <c>--seed</c>: null (generate, chat) draws a fresh one per run; eval and label generate keep 0, so
/// their numbers and candidates repeat unless asked otherwise.
/// </param>
public sealed class SamplingArguments(ulong? defaultSeed = null)
{
    public Option<int> MaxNewTokens { get; } = new("--max-new-tokens", "-n") { Description = "Tokens to generate per prompt.", DefaultValueFactory = _ => 64 };
    public Option<int> MinNewTokens { get; } = new("--min-new-tokens") { Description = "EOS is not allowed before this many tokens.", DefaultValueFactory = _ => 0 };
    public Option<double> Temperature { get; } = new("--temperature", "-t") { Description = "Sampling temperature; 0 is greedy.", DefaultValueFactory = _ => 1.0 };
    public Option<int> TopK { get; } = new("--top-k") { Description = "Keep only the k most likely tokens (0 = off).", DefaultValueFactory = _ => 0 };
    public Option<double> TopP { get; } = new("--top-p") { Description = "Nucleus sampling threshold (1 = off).", DefaultValueFactory = _ => 1.0 };
    public Option<double> RepetitionPenalty { get; } = new("--repetition-penalty") { Description = "CTRL repetition penalty (1 = off).", DefaultValueFactory = _ => 1.0 };
    public Option<double> PresencePenalty { get; } = new("--presence-penalty") { Description = "OpenAI presence penalty, -2..2: subtracted once from each already generated token's logit (0 = off).", DefaultValueFactory = _ => 0.0 };
    public Option<double> FrequencyPenalty { get; } = new("--frequency-penalty") { Description = "OpenAI frequency penalty, -2..2: subtracted per occurrence of each generated token (0 = off).", DefaultValueFactory = _ => 0.0 };
    public Option<string[]> Stop { get; } = new("--stop") { Description = "Stop a completion when its text contains this string (repeatable).", AllowMultipleArgumentsPerToken = false };
    public Option<ulong?> Seed { get; } = new("--seed") { Description = defaultSeed is ulong d ? $"Random seed; the same seed gives the same output (default: {d})." : "Random seed; the same seed gives the same output (default: fresh randomness each run)." };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { MaxNewTokens, MinNewTokens, Temperature, TopK, TopP, RepetitionPenalty, PresencePenalty, FrequencyPenalty, Stop, Seed }) command.Options.Add(o);
    }

    public SamplingOptions Read(ParseResult r) => new()
    {
        MaxNewTokens = r.GetValue(MaxNewTokens),
        MinNewTokens = r.GetValue(MinNewTokens),
        Temperature = r.GetValue(Temperature),
        TopK = r.GetValue(TopK),
        TopP = r.GetValue(TopP),
        RepetitionPenalty = r.GetValue(RepetitionPenalty),
        PresencePenalty = r.GetValue(PresencePenalty),
        FrequencyPenalty = r.GetValue(FrequencyPenalty),
        StopStrings = r.GetValue(Stop) ?? [],
        // No --seed: fresh randomness, so two runs at temperature 1 differ (issue 15), as OpenAI's unseeded requests do.
        Seed = r.GetValue(Seed) ?? defaultSeed ?? (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue),
    };
}
