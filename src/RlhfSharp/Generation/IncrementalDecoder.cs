using RlhfSharp.Tokenization;

namespace RlhfSharp.Generation;

/// <summary>
/// The text a row's new tokens add, one step at a time, without decoding the whole row again: vLLM's incremental
/// detokenisation (<c>vllm/transformers_utils/detokenizer_utils.py</c>, <c>detokenize_incrementally</c>). Each call
/// decodes a short window, from the token before the last emitted one (<c>prefix_offset</c>) to the end, and returns
/// what lies beyond the window's already-read part (<c>read_offset</c>), so a piece whose text depends on its neighbour
/// (a leading space, a character split across byte tokens) comes out as the whole row's decode has it.
/// </summary>
/// <remarks>
/// Unlike vLLM, which holds back a whole piece ending in U+FFFD (an incomplete UTF-8 character), only the trailing
/// U+FFFD run is held back: the characters before it are final, and the whole-row decode already shows them.
/// </remarks>
public sealed class IncrementalDecoder(ITokenizer tokenizer)
{
    const char Replacement = '\uFFFD';
    int prefixOffset, readOffset;
    /// <summary>Characters beyond the read part of the window already returned while the window waits for a character to complete.</summary>
    int held;

    /// <summary>The complete characters that the tokens appended to <paramref name="tokens"/> since the last call add.</summary>
    public string Next(List<int> tokens)
    {
        string prefix = tokenizer.Decode(tokens.GetRange(prefixOffset, readOffset - prefixOffset));
        string text = tokenizer.Decode(tokens.GetRange(prefixOffset, tokens.Count - prefixOffset));
        int stable = text.TrimEnd(Replacement).Length, from = prefix.Length + held;
        string piece = stable > from ? text[from..stable] : "";
        if (text.Length > prefix.Length && text[^1] != Replacement)
        {
            prefixOffset = readOffset;
            readOffset = tokens.Count;
            held = 0;
        }
        else held = Math.Max(held, stable - prefix.Length);
        return piece;
    }
}
