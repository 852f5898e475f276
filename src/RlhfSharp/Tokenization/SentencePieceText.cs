using System.Text;

namespace RlhfSharp.Tokenization;

/// <summary>
/// Turns SentencePiece pieces back into text: <c>&lt;0xXX&gt;</c> pieces are raw bytes, <c>▁</c> is a space,
/// and the bytes of the whole run are UTF-8 decoded together so that a character split over several
/// byte-fallback pieces comes back whole.
/// </summary>
internal static class SentencePieceText
{
    /// <summary>Joins <paramref name="pieces"/>; drops one leading space when <paramref name="stripFirstSpace"/> is set.</summary>
    public static string Decode(IEnumerable<string> pieces, bool stripFirstSpace)
    {
        var bytes = new List<byte>();
        foreach (var piece in pieces)
        {
            if (TryParseByte(piece, out var b)) bytes.Add(b);
            else bytes.AddRange(Encoding.UTF8.GetBytes(piece.Replace('▁', ' ')));
        }
        // Invalid sequences (a continuation cut mid-character) become U+FFFD, as HF's ByteFallback decoder does.
        var text = Encoding.UTF8.GetString(bytes.ToArray());
        return stripFirstSpace && text.StartsWith(' ') ? text[1..] : text;
    }

    /// <summary>The raw bytes of one piece: its byte for <c>&lt;0xXX&gt;</c>, else its UTF-8 with <c>▁</c> as a space.</summary>
    public static byte[] Bytes(string piece) =>
        TryParseByte(piece, out var b) ? [b] : Encoding.UTF8.GetBytes(piece.Replace('▁', ' '));

    /// <summary>True for a byte-fallback piece <c>&lt;0xXX&gt;</c> (exactly six characters, two hex digits).</summary>
    public static bool TryParseByte(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out value);
    }
}
