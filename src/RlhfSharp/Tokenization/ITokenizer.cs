namespace RlhfSharp.Tokenization;

/// <summary>
/// What the trainers and the sampler need from a tokenizer: ids in, text out, and the special ids.
/// Implementations wrap Microsoft.ML.Tokenizers where it reads the format, and read llama2.c's
/// tok.bin by hand because no library does.
/// </summary>
/// <remarks>
/// Decoding rule shared by the SentencePiece-style tokenizers (llama2.c, LLaMA): encoding adds a dummy space
/// before the text, and <see cref="Decode"/> removes it only from the piece that directly follows BOS (the rule of
/// llama2.c's run.c). So <c>Decode(Encode(text, addBos: true)) == text</c>, while a continuation (new tokens from
/// the sampler, which never start with BOS) decodes byte for byte, keeping its leading space.
/// </remarks>
public interface ITokenizer
{
    /// <summary>Number of ids the tokenizer can produce (its vocab plus added tokens).</summary>
    int VocabSize { get; }
    int? BosId { get; }
    int? EosId { get; }
    /// <summary>Every id that ends a generation (Llama 3 has several); <see cref="EosId"/> is the first.</summary>
    IReadOnlyList<int> EosIds => EosId is int eos ? [eos] : [];
    /// <summary>The pad id; falls back to EOS where the tokenizer defines none (the HF convention for causal LMs).</summary>
    int? PadId { get; }
    /// <summary>
    /// The special tokens' ids, as transformers' <c>all_special_ids</c> (bos, eos, unk, sep, pad, cls, mask and
    /// additional_special_tokens of the special-tokens map): RL4LMs never masks them in NLPO. Default: BOS, EOS ids, PAD.
    /// </summary>
    IReadOnlyList<int> SpecialIds => [.. new[] { BosId }.Concat(EosIds.Select(i => (int?)i)).Append(PadId).OfType<int>().Distinct()];

    /// <summary>Encodes text. Special-token strings inside <paramref name="text"/> are treated as plain text.</summary>
    int[] Encode(string text, bool addBos = false);

    /// <summary>
    /// Encodes text in which special-token strings (<c>&lt;|im_start|&gt;</c>, <c>&lt;s&gt;</c>, …) become their ids,
    /// as a rendered <see cref="ChatTemplate"/> needs. Inside <paramref name="plainSpans"/> (the message contents,
    /// <see cref="RenderedChat.ContentSpans"/>) special strings stay plain text, so a user cannot type a special.
    /// </summary>
    int[] EncodeWithSpecialTokens(string text, bool addBos = false, IReadOnlyList<(int Start, int Length)>? plainSpans = null);

    /// <summary>Decodes ids; BOS/EOS/PAD are dropped when <paramref name="skipSpecial"/> is set.</summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecial = true);

    /// <summary>
    /// The UTF-8 bytes one token stands for (OpenAI's logprobs <c>bytes</c>). The default encodes its decoded text, which
    /// is exact unless the token is part of a multi-byte character; tokenizers that know their byte pieces override it.
    /// </summary>
    byte[] TokenBytes(int id) => System.Text.Encoding.UTF8.GetBytes(Decode([id], skipSpecial: false));
}
