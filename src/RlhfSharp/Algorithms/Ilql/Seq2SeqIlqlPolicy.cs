using RlhfSharp.Data;
using RlhfSharp.Models.T5;
using static TorchSharp.torch;

namespace RlhfSharp.Algorithms.Ilql;

/// <summary>
/// An encoder-decoder (T5) policy for <see cref="IlqlTrainer"/>, as trlX's <c>AutoModelForSeq2SeqLMWithILQLHeads</c>
/// (CarperAI/trlx@3340c2f <c>trlx/models/modeling_ilql.py</c>): the prompt is the encoder's input, the heads read the
/// decoder's last hidden state (<c>decoder_hidden_states[-1]</c>, after the final norm) over the start token and the
/// completion (<see cref="IlqlBatch.CreateSeq2Seq"/>). The LM logits are the model's own (<see cref="T5ForConditionalGeneration.LanguageModelHead"/>):
/// trlX calls <c>lm_head(hs)</c> directly, which for a tied T5 v1.0 head skips transformers' d_model^-0.5 rescaling of the
/// decoder output, so its AWAC term would train logits the model never decodes with; FLAN-T5 and T5 v1.1 (untied) are
/// unaffected.
/// </summary>
public sealed class Seq2SeqIlqlPolicy(T5ForConditionalGeneration model) : IIlqlPolicy
{
    public nn.Module Module => model;
    public int HiddenSize => model.Config.DModel;
    public int VocabSize => model.Config.VocabSize;

    public IlqlBatch Batch(IReadOnlyList<ScoredExample> examples, IReadOnlyList<double> rewards, int padId, ScalarType dtype) =>
        IlqlBatch.CreateSeq2Seq(examples, rewards, padId, model.Config.DecoderStartTokenId, model.shared.weight!.device, dtype);

    public Tensor Hidden(IlqlBatch batch)
    {
        var (ids, mask) = (batch.EncoderIds ?? throw new ArgumentException("not an encoder-decoder ILQL batch (IlqlBatch.CreateSeq2Seq)"), batch.EncoderMask!);
        // The decoder is causal, so the padding after a short completion changes nothing before it (trlX passes no decoder mask).
        return model.Decode(batch.InputIds, model.Encode(ids, mask), mask);
    }

    public Tensor Head(Tensor hidden) => model.LanguageModelHead(hidden);
}
