using System.Text;

namespace RlhfSharp.Data;

/// <summary>
/// Splits a byte stream into lines and decodes each one strictly, so a bad byte is reported on its own line
/// (a StreamReader decodes whole buffers and would fail ahead of the line being processed, or silently insert U+FFFD).
/// </summary>
internal static class Utf8LineReader
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Each line (1-based number, text without "\n" or "\r\n"); text is null when the line is not valid UTF-8.</summary>
    public static IEnumerable<(long Line, string? Text)> ReadLines(Stream stream)
    {
        var buffer = new byte[1 << 16];
        var line = new MemoryStream();
        long number = 0;
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            for (int i = 0; i < read; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                line.Write(buffer, start, i - start);
                start = i + 1;
                yield return (++number, Decode(line, number == 1));
                line.SetLength(0);
            }
            line.Write(buffer, start, read - start);
        }
        if (line.Length > 0) yield return (++number, Decode(line, number == 1));
    }

    private static string? Decode(MemoryStream line, bool first)
    {
        var bytes = line.GetBuffer().AsSpan(0, (int)line.Length);
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
        if (first && bytes.StartsWith("\uFEFF"u8)) bytes = bytes[3..];
        try { return Strict.GetString(bytes); }
        catch (DecoderFallbackException) { return null; }
    }
}
