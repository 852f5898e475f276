using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>
/// An encoder-decoder (T5) for serve and chat: the prompt (with EOS, as T5's tokenizer encodes it) is the encoder's
/// input and the reply the decoder's tokens (<see cref="Seq2SeqSampler"/>). T5's positions are relative buckets, so
/// there is no position table to fill: the prompt is held to <see cref="MaxPromptTokens"/> and the reply is bounded only
/// by the caller's cap.
/// </summary>
/// <param name="maxPromptTokens">Longest encoder prompt: 512 by default, transformers' <c>model_max_length</c> of the T5
/// and FLAN-T5 tokenizers (the length they were trained on).</param>
public sealed class Seq2SeqTextGenerator(PretrainedSeq2SeqModel model, int maxPromptTokens = 512) : ITextGenerator
{
    readonly Seq2SeqSampler sampler = new(model.Model, model.Tokenizer);

    public PretrainedSeq2SeqModel Model => model;
    public string Path => model.Path;
    public ITokenizer Tokenizer => model.Tokenizer;
    public bool AddsBos => false;
    public int VocabSize => model.Model.Config.VocabSize;
    public IReadOnlyList<int> EosIds => sampler.EosIds;
    public int MaxPromptTokens => maxPromptTokens;
    public int ReplyRoom(int promptTokens) => promptTokens > maxPromptTokens ? 0 : int.MaxValue;
    public int[] EncodePrompt(string text) => model.EncodePrompt(text);

    /// <summary>The rendered conversation is the encoder's input, ended by EOS as T5's tokenizer ends every text.</summary>
    public int[] EncodeChat(RenderedChat rendered)
    {
        var ids = model.Tokenizer.EncodeWithSpecialTokens(rendered.Text, addBos: false, rendered.ContentSpans);
        return model.Tokenizer is HfTokenizer { AddEosToken: true, EosId: int eos } ? [.. ids, eos] : ids;
    }

    public IReadOnlyList<Completion> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options,
        Action<int, int>? onToken = null, CancellationToken cancel = default, Action<SampledToken>? onSampled = null) =>
        sampler.Generate(prompts, options, onToken, cancel, onSampled);

    public bool ScoresPrompt => false;
    public Tensor? PromptLogits(int[] ids) => null;
}
