namespace RlhfSharp.Tokenization;

/// <summary>
/// The part of a tokenizer that turns plain text (no special tokens) into ids and back. <see cref="HfTokenizer"/>
/// handles special tokens around it, so every model here can stay ignorant of them.
/// </summary>
internal interface IBpeModel
{
    /// <summary>Encodes text; <paramref name="atTextStart"/> is false for a segment that follows a special token.</summary>
    int[] Encode(string text, bool atTextStart);

    /// <summary>Decodes a run of ordinary ids; <paramref name="afterBos"/> asks to drop the dummy-prefix space.</summary>
    string Decode(IReadOnlyList<int> ids, bool afterBos);

    /// <summary>The raw bytes one ordinary id stands for (a byte piece may be part of a multi-byte character).</summary>
    byte[] TokenBytes(int id);
}
