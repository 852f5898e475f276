using RlhfSharp.Cli;

namespace RlhfSharp.Tests.Cli;

/// <summary>
/// Issue 15, <c>rlhf chat</c>'s line editing and history. The expected lines follow GNU Readline's documented default
/// (emacs) bindings: backward-char, beginning-of-line, kill-line, unix-line-discard, unix-word-rubout, previous-history…
/// </summary>
public class LineEditorTests
{
    static ConsoleKeyInfo Char(char c) => new(c, char.IsAsciiLetter(c) ? ConsoleKey.A + (char.ToLowerInvariant(c) - 'a') : 0, char.IsUpper(c), false, false);
    static ConsoleKeyInfo Key(ConsoleKey key) => new(key switch { ConsoleKey.Enter => '\r', ConsoleKey.Backspace => '\b', _ => '\0' }, key, false, false, false);
    static ConsoleKeyInfo Ctrl(char letter) => new((char)(letter - 'a' + 1), ConsoleKey.A + (letter - 'a'), false, false, true);
    static IEnumerable<ConsoleKeyInfo> Type(string text) => text.Select(Char);

    static readonly ConsoleKeyInfo Enter = Key(ConsoleKey.Enter), Left = Key(ConsoleKey.LeftArrow), Up = Key(ConsoleKey.UpArrow), Down = Key(ConsoleKey.DownArrow);

    /// <summary>Runs <paramref name="keys"/> through one editor and returns each line read (null: end of input).</summary>
    static (List<string?> Lines, string Output) Read(int lines, params IEnumerable<ConsoleKeyInfo>[] keys)
    {
        var queue = new Queue<ConsoleKeyInfo>(keys.SelectMany(k => k));
        var output = new StringWriter();
        var editor = new LineEditor(queue.Dequeue, output);
        var read = Enumerable.Range(0, lines).Select(_ => editor.ReadLine("> ")).ToList();
        Assert.Empty(queue);
        return (read, output.ToString());
    }

    [Fact]
    public void Arrows_home_end_backspace_and_delete_edit_inside_the_line()
    {
        var (lines, output) = Read(2,
            Type("hello"), [Left, Left], Type("X"), [Key(ConsoleKey.Home)], Type("A"), [Key(ConsoleKey.End), Key(ConsoleKey.Backspace), Enter],
            Type("abc"), [Key(ConsoleKey.Home), Key(ConsoleKey.Delete), Key(ConsoleKey.RightArrow), Key(ConsoleKey.Delete), Enter]);
        Assert.Equal(["AhelXl", "b"], lines);
        Assert.Contains("\r> AhelXl\x1b[K", output); // the line is redrawn in place
    }

    [Fact]
    public void Up_and_down_walk_the_history_and_come_back_to_the_draft()
    {
        var (lines, _) = Read(4,
            Type("first"), [Enter], Type("second"), [Enter],
            Type("dr"), [Up, Up, Up, Down, Down, Enter],
            [Up, Up, Key(ConsoleKey.End)], Type("!"), [Enter]);
        Assert.Equal(["first", "second", "dr", "second!"], lines);
    }

    [Fact]
    public void Ctrl_keys_kill_to_the_start_the_end_and_the_word_before()
    {
        var (lines, _) = Read(4,
            Type("one two"), [Left, Left, Left, Ctrl('u'), Enter],
            Type("one two"), [Ctrl('a'), Ctrl('f'), Ctrl('f'), Ctrl('f'), Ctrl('k'), Enter],
            Type("say hello  "), [Ctrl('w'), Enter],
            Type("ab"), [Ctrl('b'), Ctrl('b'), Ctrl('d'), Ctrl('e'), Ctrl('h'), Enter]);
        Assert.Equal(["two", "one", "say ", ""], lines);
    }

    [Fact]
    public void Ctrl_c_drops_the_line_and_ctrl_d_on_an_empty_line_ends_input()
    {
        var (lines, output) = Read(2, Type("junk"), [Ctrl('c')], Type("ok"), [Enter, Ctrl('d')]);
        Assert.Equal(["ok", null], lines);
        Assert.Contains("^C", output);
    }
}
