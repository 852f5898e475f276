namespace RlhfSharp.Cli;

/// <summary>
/// The line editing and history of <c>rlhf chat</c> at a terminal, with GNU Readline's default (emacs) keys: ←/→
/// (Ctrl-B/F), Home/End (Ctrl-A/E), Backspace, Delete, ↑/↓ (Ctrl-P/N) through this session's lines, Ctrl-U/Ctrl-K
/// (delete to the start/end), Ctrl-W (the word before the cursor), Ctrl-D (quit on an empty line, else delete), Ctrl-C
/// (drop the line, as bash does). Keys come from <paramref name="readKey"/> (Console.ReadKey, which decodes the
/// terminal's escape sequences), so the editing is tested without a terminal; the line is redrawn with ANSI codes.
/// </summary>
public sealed class LineEditor(Func<ConsoleKeyInfo> readKey, TextWriter output)
{
    /// <summary>Lines entered so far, oldest first (an empty line or one equal to the last is not added, as bash's ignoredups).</summary>
    public List<string> History { get; } = [];

    /// <summary>Reads one line after <paramref name="prompt"/>; null at Ctrl-D on an empty line (end of input).</summary>
    public string? ReadLine(string prompt)
    {
        var line = new System.Text.StringBuilder();
        int cursor = 0, recalled = History.Count;
        string draft = "";
        output.Write(prompt);
        void Redraw()
        {
            // Back to the line's start, the prompt and text again, clear what is left of the old text, then the cursor into place.
            output.Write("\r" + prompt + line + "\x1b[K");
            if (line.Length > cursor) output.Write($"\x1b[{line.Length - cursor}D");
        }
        void Replace(string text) { line.Clear().Append(text); cursor = line.Length; }
        while (true)
        {
            var key = readKey();
            bool ctrl = (key.Modifiers & ConsoleModifiers.Control) != 0;
            ConsoleKey k = key.Key;
            // Ctrl+letter arrives as the letter with the Control modifier, or only as its control character.
            char letter = ctrl && k is >= ConsoleKey.A and <= ConsoleKey.Z ? (char)('a' + (k - ConsoleKey.A))
                : key.KeyChar is >= '\x01' and <= '\x1a' && k != ConsoleKey.Enter && k != ConsoleKey.Tab && k != ConsoleKey.Backspace ? (char)('a' + key.KeyChar - 1) : '\0';
            if (k == ConsoleKey.Enter || key.KeyChar is '\r' or '\n')
            {
                output.WriteLine();
                string text = line.ToString();
                if (text.Length > 0 && (History.Count == 0 || History[^1] != text)) History.Add(text);
                return text;
            }
            switch (letter)
            {
                case 'd' when line.Length == 0: output.WriteLine(); return null;
                case 'd': if (cursor < line.Length) line.Remove(cursor, 1); break;
                case 'c': output.WriteLine("^C"); line.Clear(); cursor = 0; recalled = History.Count; output.Write(prompt); continue;
                case 'a': cursor = 0; break;
                case 'e': cursor = line.Length; break;
                case 'b': cursor = Math.Max(0, cursor - 1); break;
                case 'f': cursor = Math.Min(line.Length, cursor + 1); break;
                case 'u': line.Remove(0, cursor); cursor = 0; break;
                case 'k': line.Length = cursor; break;
                case 'w':
                    // unix-word-rubout: back over spaces, then over the word before them.
                    int start = cursor;
                    while (start > 0 && line[start - 1] == ' ') start--;
                    while (start > 0 && line[start - 1] != ' ') start--;
                    line.Remove(start, cursor - start);
                    cursor = start;
                    break;
                case 'p': k = ConsoleKey.UpArrow; goto default;
                case 'n': k = ConsoleKey.DownArrow; goto default;
                case 'h': k = ConsoleKey.Backspace; goto default;
                default:
                    switch (k)
                    {
                        case ConsoleKey.Backspace when cursor > 0: line.Remove(--cursor, 1); break;
                        case ConsoleKey.Delete when cursor < line.Length: line.Remove(cursor, 1); break;
                        case ConsoleKey.LeftArrow: cursor = Math.Max(0, cursor - 1); break;
                        case ConsoleKey.RightArrow: cursor = Math.Min(line.Length, cursor + 1); break;
                        case ConsoleKey.Home: cursor = 0; break;
                        case ConsoleKey.End: cursor = line.Length; break;
                        case ConsoleKey.UpArrow when recalled > 0:
                            if (recalled == History.Count) draft = line.ToString();
                            Replace(History[--recalled]);
                            break;
                        case ConsoleKey.DownArrow when recalled < History.Count:
                            recalled++;
                            Replace(recalled == History.Count ? draft : History[recalled]);
                            break;
                        default:
                            if (letter != '\0' || char.IsControl(key.KeyChar) || key.KeyChar == '\0') continue; // unbound: nothing to redraw
                            line.Insert(cursor++, key.KeyChar);
                            break;
                    }
                    break;
            }
            Redraw();
        }
    }
}
