using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// A model with its tokenizer as <c>rlhf serve</c> and <c>rlhf chat</c> use it: encode a prompt, generate from token
/// ids with per-token callbacks, know how much room a prompt leaves. Decoder-only models (<see cref="CausalTextGenerator"/>)
/// and encoder-decoders (<see cref="Seq2SeqTextGenerator"/>, T5: the prompt is the encoder's input) answer alike.
/// </summary>
public interface ITextGenerator
{
    /// <summary>The folder or name the model was loaded from (its chat template is looked for there).</summary>
    string Path { get; }
    ITokenizer Tokenizer { get; }
    /// <summary>Whether a text prompt starts with BOS (LLaMA-family tokenizers).</summary>
    bool AddsBos { get; }
    int VocabSize { get; }
    /// <summary>EOS ids that end a reply.</summary>
    IReadOnlyList<int> EosIds { get; }
    /// <summary>The longest prompt, in tokens, the model takes.</summary>
    int MaxPromptTokens { get; }
    /// <summary>How many new tokens fit after a prompt of <paramref name="promptTokens"/> tokens.</summary>
    int ReplyRoom(int promptTokens);
    /// <summary>A text prompt's ids, as <c>rlhf generate --prompt</c> encodes it.</summary>
    int[] EncodePrompt(string text);
    /// <summary>A conversation rendered by its chat template; its messages' content never becomes special tokens.</summary>
    int[] EncodeChat(RenderedChat rendered);
    /// <summary>Samples completions of token-id prompts (see <see cref="Sampler.Generate"/>).</summary>
    IReadOnlyList<Completion> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options,
        Action<int, int>? onToken = null, CancellationToken cancel = default, Action<SampledToken>? onSampled = null);
    /// <summary>Whether <see cref="PromptLogits"/> gives the prompt's own scores (false for an encoder-decoder).</summary>
    bool ScoresPrompt { get; }
    /// <summary>
    /// Teacher-forced logits (T, V) of a prompt's own tokens, row t predicting token t + 1 (the echo of OpenAI's legacy
    /// completions); null when the model does not score its prompt (an encoder-decoder reads it, it does not predict it).
    /// </summary>
    Tensor? PromptLogits(int[] ids);
}
