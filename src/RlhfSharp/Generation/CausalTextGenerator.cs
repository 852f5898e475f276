using static TorchSharp.torch;

namespace RlhfSharp.Generation;

/// <summary>A decoder-only model for serve and chat: the prompt and the reply share the model's positions.</summary>
public sealed class CausalTextGenerator(PretrainedModel model) : ITextGenerator
{
    readonly Sampler sampler = new(model.Model, model.Tokenizer);

    public PretrainedModel Model => model;
    public string Path => model.Path;
    public ITokenizer Tokenizer => model.Tokenizer;
    public bool AddsBos => model.AddsBos;
    public int VocabSize => model.Model.Config.VocabSize;
    public IReadOnlyList<int> EosIds => sampler.EosIds;
    public int MaxPromptTokens => model.Model.Config.MaxPositions;
    public int ReplyRoom(int promptTokens) => model.Model.Config.MaxPositions - promptTokens;
    public int[] EncodePrompt(string text) => model.EncodePrompt(text);

    public int[] EncodeChat(RenderedChat rendered)
    {
        bool bosInText = rendered.Text.StartsWith("<s>") || rendered.Text.StartsWith("<|begin_of_text|>");
        return model.Tokenizer.EncodeWithSpecialTokens(rendered.Text, addBos: model.AddsBos && !bosInText, rendered.ContentSpans);
    }

    public IReadOnlyList<Completion> Generate(IReadOnlyList<int[]> prompts, SamplingOptions options,
        Action<int, int>? onToken = null, CancellationToken cancel = default, Action<SampledToken>? onSampled = null) =>
        sampler.Generate(prompts, options, onToken, cancel, onSampled);

    public bool ScoresPrompt => true;
    public Tensor? PromptLogits(int[] ids) => model.Model.Forward(tensor(ids.Select(x => (long)x).ToArray(), [1, ids.Length]))[0];
}
