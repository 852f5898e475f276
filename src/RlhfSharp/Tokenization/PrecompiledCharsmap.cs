using System.Globalization;
using System.Text;

namespace RlhfSharp.Tokenization;

/// <summary>
/// SentencePiece's compiled normalization rules (a tokenizer.json <c>Precompiled</c> normalizer, the
/// <c>precompiled_charsmap</c> of T5, Pegasus, mBART, XLM-R): a Darts double-array trie over UTF-8 keys whose values
/// point into a pool of NUL-terminated replacement strings. Applied as HF tokenizers applies it
/// (<c>tokenizers/src/normalizers/precompiled.rs</c> on the <c>spm_precompiled</c> crate).
/// </summary>
/// <remarks>
/// The blob is <c>[u32 trie size in bytes][trie units][replacement pool]</c>, little-endian. Each grapheme cluster
/// shorter than 6 UTF-8 bytes is looked up whole; otherwise (or when it has no rule) each character is looked up alone.
/// A lookup takes the value of the <em>shortest</em> rule that is a prefix of the chunk and replaces the whole chunk
/// with it: that is what spm_precompiled does (its authors note it looks wrong, and that changing it breaks exactness
/// against SentencePiece on XNLI), so it is kept.
/// </remarks>
internal sealed class PrecompiledCharsmap
{
    private readonly uint[] _units;
    private readonly byte[] _pool;

    private PrecompiledCharsmap(uint[] units, byte[] pool)
    {
        _units = units;
        _pool = pool;
    }

    /// <summary>Reads the base64 <c>precompiled_charsmap</c> of a tokenizer.json.</summary>
    /// <exception cref="RlhfException">The blob is not base64 or its trie size does not fit; names <paramref name="path"/>.</exception>
    public static PrecompiledCharsmap FromBase64(string base64, string path)
    {
        byte[] blob;
        try { blob = Convert.FromBase64String(base64); }
        catch (FormatException e) { throw new RlhfException($"{path}: normalizer Precompiled precompiled_charsmap is not base64: {e.Message}", e); }
        if (blob.Length < 4) throw new RlhfException($"{path}: normalizer Precompiled precompiled_charsmap is {blob.Length} bytes, shorter than its size field");
        uint trieBytes = BitConverter.ToUInt32(blob, 0);
        if (trieBytes % 4 != 0 || trieBytes > blob.Length - 4)
            throw new RlhfException($"{path}: normalizer Precompiled precompiled_charsmap declares a trie of {trieBytes} bytes in a blob of {blob.Length}");
        var units = new uint[trieBytes / 4];
        for (int i = 0; i < units.Length; i++) units[i] = BitConverter.ToUInt32(blob, 4 + 4 * i);
        return new PrecompiledCharsmap(units, blob[(4 + (int)trieBytes)..]);
    }

    /// <summary>Normalizes <paramref name="text"/> grapheme by grapheme.</summary>
    public string Normalize(string text)
    {
        var result = new StringBuilder(text.Length);
        Span<byte> utf8 = stackalloc byte[64];
        for (int i = 0; i < text.Length;)
        {
            int length = StringInfo.GetNextTextElementLength(text.AsSpan(i));
            var grapheme = text.AsSpan(i, length);
            int byteCount = Encoding.UTF8.GetByteCount(grapheme);
            if (byteCount < 6)
            {
                Encoding.UTF8.GetBytes(grapheme, utf8);
                if (Transform(utf8[..byteCount]) is string whole) { result.Append(whole); i += length; continue; }
            }
            for (int j = 0; j < length;)
            {
                int charLength = char.IsHighSurrogate(grapheme[j]) && j + 1 < length && char.IsLowSurrogate(grapheme[j + 1]) ? 2 : 1;
                var character = grapheme.Slice(j, charLength);
                int n = Encoding.UTF8.GetBytes(character, utf8);
                if (Transform(utf8[..n]) is string replaced) result.Append(replaced);
                else result.Append(character);
                j += charLength;
            }
            i += length;
        }
        return result.ToString();
    }

    /// <summary>The replacement under the shortest rule that is a prefix of <paramref name="key"/>, or null.</summary>
    private string? Transform(ReadOnlySpan<byte> key)
    {
        if (_units.Length == 0) return null;
        long pos = Offset(_units[0]);
        foreach (byte c in key)
        {
            if (c == 0) break;
            pos ^= c;
            if (pos >= _units.Length) return null;
            uint unit = _units[pos];
            if (Label(unit) != c) return null;
            pos ^= Offset(unit);
            if (pos >= _units.Length) return null;
            if (HasLeaf(unit))
            {
                int start = (int)(_units[pos] & 0x7FFF_FFFF);
                if (start > _pool.Length) return null;
                int end = Array.IndexOf(_pool, (byte)0, start);
                return Encoding.UTF8.GetString(_pool, start, (end < 0 ? _pool.Length : end) - start);
            }
        }
        return null;
    }

    // Darts-clone's unit layout: offset in bits 10..30 (shifted by 8 more when bit 9 is set), a leaf flag in bit 8,
    // the label in bits 0..7 (bit 31 set marks a value unit, so a value never equals a label).
    private static long Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
    private static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);
    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;
}
