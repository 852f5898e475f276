using RlhfSharp.Tokenization;

namespace RlhfSharp.Tests.Tokenization;

/// <summary>The stories260K tokenizer and the oracle from models/stories260K/SOURCE.md.</summary>
internal static class Stories260K
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "models", "stories260K");
    public static string TokenizerPath => Path.Combine(Dir, "tok512.bin");

    public static Llama2cTokenizer Tokenizer() => Llama2cTokenizer.Load(TokenizerPath);

    /// <summary>Greedy ids after BOS, computed by an independent float64 forward pass (SOURCE.md "Test oracle").</summary>
    public static readonly int[] GreedyIds =
    [
        403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385,
        328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13, 438, 310,
    ];

    /// <summary>The oracle's decoded text, without the leading space that run.c drops after BOS.</summary>
    public const string GreedyText =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily";
}
