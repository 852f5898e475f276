using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>What a <see cref="ILogitsProcessor"/> may read at a decoding step (transformers passes <c>input_ids</c>).</summary>
public sealed class DecodingState
{
    /// <summary>(B·P) left-padded prompt ids, on the host.</summary>
    public required long[] PromptIds { get; init; }
    /// <summary>(B·P) 1 where <see cref="PromptIds"/> holds a real token.</summary>
    public required long[] PromptMask { get; init; }
    public required int PromptLength { get; init; }
    /// <summary>The tokens each row has generated so far (a finished row stops growing).</summary>
    public required List<int>[] Generated { get; init; }
    /// <summary>(B, V) how often each row generated each token; kept only when a penalty reads it.</summary>
    public Tensor? Counts { get; init; }
    /// <summary>New tokens generated before this step (0 at the first).</summary>
    public int Step { get; set; }
}
