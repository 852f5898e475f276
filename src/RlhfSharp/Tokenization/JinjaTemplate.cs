using System.Globalization;
using System.Text;
using System.Text.Json;

namespace RlhfSharp.Tokenization;

/// <summary>
/// The subset of Jinja that Hugging Face chat templates use, rendered as transformers' <c>apply_chat_template</c>
/// renders them (an <c>ImmutableSandboxedEnvironment</c> with <c>trim_blocks</c> and <c>lstrip_blocks</c>):
/// <c>{{ }}</c>, <c>{% if/elif/else %}</c>, <c>{% for %}</c> with <c>loop</c>, <c>{% set %}</c>, whitespace control
/// (<c>-</c>), string/number/list literals, attribute and item access, <c>+ - * / % ~</c>, comparisons, <c>in</c>,
/// <c>and/or/not</c>, tests (<c>is defined</c>, <c>is none</c>, <c>is string</c>…), filters (trim, tojson, length,
/// upper, lower, first, last, join, default, string) and the string methods strip, startswith, endswith, split.
/// </summary>
/// <remarks>
/// Written by hand because no maintained .NET Jinja engine is available from NuGet here: Fluid implements Liquid
/// and Scriban its own language and Liquid, and neither parses Jinja expressions (<c>a + b</c>, <c>not x</c>,
/// <c>x is defined</c>, method calls, <c>raise_exception(...)</c>) that every chat template uses.
/// </remarks>
public sealed class JinjaTemplate
{
    private readonly List<Node> _body;
    private readonly string _source;

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="RlhfException">The template uses syntax outside the supported subset; the message says where.</exception>
    public JinjaTemplate(string source)
    {
        _source = source;
        var parser = new Parser(Lex(source), source);
        _body = parser.ParseBlock(out var end);
        if (end is not null) throw new RlhfException($"chat template: unexpected {{% {end} %}}");
    }

    /// <summary>Renders with <paramref name="variables"/> (values: string, bool, long, double, lists, string-keyed dictionaries, null).</summary>
    /// <exception cref="RlhfException">The template called <c>raise_exception</c>, or failed; the message says why.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        var scope = new Dictionary<string, object?>(variables);
        var output = new StringBuilder();
        Execute(_body, scope, output);
        return output.ToString();
    }

    // ---- Lexing: text, {{ expr }}, {% stmt %}, {# comment #}, with Jinja's whitespace control -------------------

    private enum PartKind { Text, Output, Statement }
    private sealed record Part(PartKind Kind, string Content, int Offset);

    private static List<Part> Lex(string source)
    {
        var parts = new List<Part>();
        int i = 0;
        bool trimNextLeading = false, afterBlock = false;
        while (i < source.Length)
        {
            int open = source.IndexOf('{', i);
            while (open >= 0 && open + 1 < source.Length && source[open + 1] is not ('{' or '%' or '#')) open = source.IndexOf('{', open + 1);
            if (open < 0 || open + 1 >= source.Length) open = source.Length;
            var text = source[i..open];
            char kind = open < source.Length ? source[open + 1] : '\0';
            bool minusLeft = open + 2 < source.Length && source[open + 2] == '-';
            // Whether this text starts a line (Jinja's lexer: the template start, or a tag whose match ended in "\n").
            bool lineStarting = i == 0;
            if (trimNextLeading)
            {
                // "-%}" / "-}}": all whitespace after the tag goes.
                int k = 0;
                while (k < text.Length && char.IsWhiteSpace(text[k])) k++;
                lineStarting = k > 0 && text[k - 1] == '\n';
                text = text[k..];
            }
            else if (afterBlock && text.StartsWith('\n'))
            {
                // trim_blocks: the first newline after a block tag goes.
                text = text[1..];
                lineStarting = true;
            }
            if (minusLeft) text = text.TrimEnd();
            else if (kind is '%' or '#')
            {
                // lstrip_blocks: spaces and tabs between the start of a line and a block tag go.
                int lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && text[lineStart..].All(c => c is ' ' or '\t')) text = text[..lineStart];
            }
            if (text.Length > 0) parts.Add(new Part(PartKind.Text, text, i));
            if (open >= source.Length) break;
            string close = kind switch { '{' => "}}", '%' => "%}", _ => "#}" };
            int end = source.IndexOf(close, open + 2, StringComparison.Ordinal);
            if (end < 0) throw new RlhfException($"chat template: unclosed {{{kind} at offset {open}");
            int contentStart = open + 2 + (minusLeft ? 1 : 0);
            bool minusRight = end > contentStart && source[end - 1] == '-';
            var content = source[contentStart..(minusRight ? end - 1 : end)].Trim();
            if (kind == '{') parts.Add(new Part(PartKind.Output, content, open));
            else if (kind == '%') parts.Add(new Part(PartKind.Statement, content, open));
            trimNextLeading = minusRight;
            afterBlock = kind is '%' or '#';
            i = end + 2;
        }
        return parts;
    }

    // ---- Syntax tree ---------------------------------------------------------------------------------------------

    private abstract record Node;
    private sealed record TextNode(string Text) : Node;
    private sealed record OutputNode(Expr Value) : Node;
    private sealed record IfNode(List<(Expr? Condition, List<Node> Body)> Branches) : Node;
    private sealed record ForNode(List<string> Targets, Expr Iterable, Expr? Filter, List<Node> Body, List<Node>? Else) : Node;
    private sealed record SetNode(List<string> Target, Expr Value) : Node;

    private abstract record Expr;
    private sealed record Literal(object? Value) : Expr;
    private sealed record Name(string Id) : Expr;
    private sealed record ListExpr(List<Expr> Items) : Expr;
    private sealed record DictExpr(List<(Expr Key, Expr Value)> Items) : Expr;
    private sealed record Attr(Expr Target, string Key) : Expr;
    private sealed record Item(Expr Target, Expr Key) : Expr;
    private sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop) : Expr;
    private sealed record Call(Expr Target, List<Expr> Args, List<(string, Expr)> Kwargs) : Expr;
    private sealed record Unary(string Op, Expr Operand) : Expr;
    private sealed record Binary(string Op, Expr Left, Expr Right) : Expr;
    private sealed record Filter(Expr Target, string Name, List<Expr> Args) : Expr;
    private sealed record Test(Expr Target, string Name, bool Negated, List<Expr> Args) : Expr;
    private sealed record Conditional(Expr Condition, Expr Then, Expr? Else) : Expr;

    /// <summary>Jinja's Undefined: prints as "", is false, and any attribute of it is undefined again.</summary>
    private sealed class Undefined { public static readonly Undefined Value = new(); }

    /// <summary>The <c>loop</c> variable of a for loop.</summary>
    private sealed record Loop(int Index0, int Length);

    /// <summary>The mutable object <c>namespace()</c> returns (Llama 3.1 and Qwen templates set attributes on it).</summary>
    private sealed class Namespace : Dictionary<string, object?> { }

    // ---- Parsing ------------------------------------------------------------------------------------------------

    private sealed class Parser(List<Part> parts, string source)
    {
        private int _index;

        public List<Node> ParseBlock(out string? endTag)
        {
            var nodes = new List<Node>();
            while (_index < parts.Count)
            {
                var part = parts[_index++];
                switch (part.Kind)
                {
                    case PartKind.Text: nodes.Add(new TextNode(part.Content)); break;
                    case PartKind.Output: nodes.Add(new OutputNode(ParseExpression(part.Content, part.Offset))); break;
                    default:
                        var words = part.Content.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries);
                        var keyword = words.Length > 0 ? words[0] : "";
                        var rest = words.Length > 1 ? words[1] : "";
                        switch (keyword)
                        {
                            case "if": nodes.Add(ParseIf(rest, part.Offset)); break;
                            case "for": nodes.Add(ParseFor(rest, part.Offset)); break;
                            case "set":
                                int eq = rest.IndexOf('=');
                                if (eq < 0) throw Error(part.Offset, "{% set %} without '=' (block set is not supported)");
                                nodes.Add(new SetNode(rest[..eq].Trim().Split('.').Select(s => s.Trim()).ToList(), ParseExpression(rest[(eq + 1)..], part.Offset)));
                                break;
                            case "elif" or "else" or "endif" or "endfor":
                                endTag = part.Content;
                                return nodes;
                            default: throw Error(part.Offset, $"unsupported tag {{% {keyword} %}}");
                        }
                        break;
                }
            }
            endTag = null;
            return nodes;
        }

        private IfNode ParseIf(string condition, int offset)
        {
            var branches = new List<(Expr?, List<Node>)>();
            Expr? current = ParseExpression(condition, offset);
            while (true)
            {
                var body = ParseBlock(out var end);
                branches.Add((current, body));
                if (end is null) throw Error(offset, "{% if %} without {% endif %}");
                if (end == "endif") return new IfNode(branches);
                if (end == "else") current = null;
                else if (end.StartsWith("elif", StringComparison.Ordinal)) current = ParseExpression(end[4..], offset);
                else throw Error(offset, $"unexpected {{% {end} %}} inside {{% if %}}");
            }
        }

        private ForNode ParseFor(string header, int offset)
        {
            int inAt = header.IndexOf(" in ", StringComparison.Ordinal);
            if (inAt < 0) throw Error(offset, "{% for %} without 'in'");
            var targets = header[..inAt].Split(',').Select(t => t.Trim().Trim('(', ')').Trim()).ToList();
            var iterable = header[(inAt + 4)..];
            Expr? filter = null;
            var tokens = new ExprParser(iterable, offset, source);
            var iterExpr = tokens.ParseNoIf();
            if (tokens.TryKeyword("if")) filter = tokens.Parse();
            tokens.ExpectEnd();
            var body = ParseBlock(out var end);
            List<Node>? elseBody = null;
            if (end == "else") elseBody = ParseBlock(out end);
            if (end != "endfor") throw Error(offset, "{% for %} without {% endfor %}");
            return new ForNode(targets, iterExpr, filter, body, elseBody);
        }

        private Expr ParseExpression(string text, int offset)
        {
            var parser = new ExprParser(text, offset, source);
            var expr = parser.Parse();
            parser.ExpectEnd();
            return expr;
        }

        private RlhfException Error(int offset, string message) => ExprParser.ErrorAt(source, offset, message);
    }

    private sealed class ExprParser
    {
        private readonly List<string> _tokens = [];
        private readonly List<bool> _isString = [];
        private int _i;
        private readonly int _offset;
        private readonly string _source;

        public ExprParser(string text, int offset, string source)
        {
            _offset = offset;
            _source = source;
            int i = 0;
            while (i < text.Length)
            {
                char c = text[i];
                if (char.IsWhiteSpace(c)) { i++; continue; }
                if (c is '\'' or '"')
                {
                    var sb = new StringBuilder();
                    int j = i + 1;
                    for (; j < text.Length && text[j] != c; j++)
                    {
                        if (text[j] == '\\' && j + 1 < text.Length)
                        {
                            j++;
                            sb.Append(text[j] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', _ => text[j] });
                        }
                        else sb.Append(text[j]);
                    }
                    if (j >= text.Length) throw ErrorAt(source, offset, "unterminated string");
                    _tokens.Add(sb.ToString()); _isString.Add(true);
                    i = j + 1;
                    continue;
                }
                if (char.IsLetter(c) || c == '_')
                {
                    int j = i;
                    while (j < text.Length && (char.IsLetterOrDigit(text[j]) || text[j] == '_')) j++;
                    _tokens.Add(text[i..j]); _isString.Add(false); i = j; continue;
                }
                if (char.IsDigit(c))
                {
                    int j = i;
                    while (j < text.Length && (char.IsDigit(text[j]) || (text[j] == '.' && j + 1 < text.Length && char.IsDigit(text[j + 1])))) j++;
                    _tokens.Add(text[i..j]); _isString.Add(false); i = j; continue;
                }
                var two = i + 1 < text.Length ? text.Substring(i, 2) : "";
                if (two is "==" or "!=" or "<=" or ">=" or "//" or "**") { _tokens.Add(two); _isString.Add(false); i += 2; continue; }
                _tokens.Add(c.ToString()); _isString.Add(false); i++;
            }
        }

        public static RlhfException ErrorAt(string source, int offset, string message)
        {
            int line = source.Take(Math.Min(offset, source.Length)).Count(ch => ch == '\n') + 1;
            return new RlhfException($"chat template line {line}: {message}");
        }

        private string? Peek => _i < _tokens.Count && !_isString[_i] ? _tokens[_i] : null;
        private bool PeekIs(string t) => Peek == t;

        public bool TryKeyword(string word)
        {
            if (!PeekIs(word)) return false;
            _i++;
            return true;
        }

        private void Expect(string t)
        {
            if (!TryKeyword(t)) throw ErrorAt(_source, _offset, $"expected '{t}'");
        }

        public void ExpectEnd()
        {
            if (_i < _tokens.Count) throw ErrorAt(_source, _offset, $"unexpected '{_tokens[_i]}'");
        }

        public Expr Parse()
        {
            var expr = ParseNoIf();
            if (TryKeyword("if"))
            {
                var condition = ParseOr();
                Expr? otherwise = TryKeyword("else") ? Parse() : null;
                return new Conditional(condition, expr, otherwise);
            }
            return expr;
        }

        public Expr ParseNoIf() => ParseOr();

        private Expr ParseOr()
        {
            var left = ParseAnd();
            while (TryKeyword("or")) left = new Binary("or", left, ParseAnd());
            return left;
        }

        private Expr ParseAnd()
        {
            var left = ParseNot();
            while (TryKeyword("and")) left = new Binary("and", left, ParseNot());
            return left;
        }

        private Expr ParseNot() => TryKeyword("not") ? new Unary("not", ParseNot()) : ParseCompare();

        private Expr ParseCompare()
        {
            var left = ParseMath1();
            while (true)
            {
                if (Peek is "==" or "!=" or "<" or ">" or "<=" or ">=") { var op = _tokens[_i++]; left = new Binary(op, left, ParseMath1()); }
                else if (PeekIs("in")) { _i++; left = new Binary("in", left, ParseMath1()); }
                else if (PeekIs("not") && _i + 1 < _tokens.Count && _tokens[_i + 1] == "in" && !_isString[_i + 1]) { _i += 2; left = new Unary("not", new Binary("in", left, ParseMath1())); }
                else return left;
            }
        }

        private Expr ParseMath1()
        {
            var left = ParseConcat();
            while (Peek is "+" or "-") { var op = _tokens[_i++]; left = new Binary(op, left, ParseConcat()); }
            return left;
        }

        private Expr ParseConcat()
        {
            var left = ParseMath2();
            while (TryKeyword("~")) left = new Binary("~", left, ParseMath2());
            return left;
        }

        private Expr ParseMath2()
        {
            var left = ParseUnary();
            while (Peek is "*" or "/" or "//" or "%") { var op = _tokens[_i++]; left = new Binary(op, left, ParseUnary()); }
            return left;
        }

        private Expr ParseUnary()
        {
            if (TryKeyword("-")) return new Unary("-", ParseUnary());
            var expr = ParsePostfix(ParsePrimary());
            // Filters and tests bind tighter than any binary operator: 'a' + x | trim trims x only.
            while (true)
            {
                if (TryKeyword("|"))
                {
                    var name = NextName();
                    var args = PeekIs("(") ? ParseArgs(out _) : [];
                    expr = ParsePostfix(new Filter(expr, name, args));
                }
                else if (TryKeyword("is"))
                {
                    bool negated = TryKeyword("not");
                    var name = NextName();
                    var args = PeekIs("(") ? ParseArgs(out _) : [];
                    expr = new Test(expr, name, negated, args);
                }
                else return expr;
            }
        }

        private string NextName()
        {
            if (_i >= _tokens.Count || _isString[_i]) throw ErrorAt(_source, _offset, "expected a name");
            return _tokens[_i++];
        }

        private Expr ParsePostfix(Expr expr)
        {
            while (true)
            {
                if (TryKeyword(".")) expr = new Attr(expr, NextName());
                else if (TryKeyword("["))
                {
                    Expr? start = PeekIs(":") ? null : Parse();
                    if (TryKeyword(":"))
                    {
                        Expr? stop = PeekIs("]") ? null : Parse();
                        Expect("]");
                        expr = new SliceExpr(expr, start, stop);
                    }
                    else { Expect("]"); expr = new Item(expr, start!); }
                }
                else if (PeekIs("("))
                {
                    var args = ParseArgs(out var kwargs);
                    expr = new Call(expr, args, kwargs);
                }
                else return expr;
            }
        }

        private List<Expr> ParseArgs(out List<(string, Expr)> kwargs)
        {
            Expect("(");
            var args = new List<Expr>();
            kwargs = [];
            while (!PeekIs(")"))
            {
                if (_i + 1 < _tokens.Count && !_isString[_i] && _tokens[_i + 1] == "=" && char.IsLetter(_tokens[_i][0]))
                {
                    var key = _tokens[_i];
                    _i += 2;
                    kwargs.Add((key, Parse()));
                }
                else args.Add(Parse());
                if (!TryKeyword(",")) break;
            }
            Expect(")");
            return args;
        }

        private Expr ParsePrimary()
        {
            if (_i >= _tokens.Count) throw ErrorAt(_source, _offset, "unexpected end of expression");
            if (_isString[_i])
            {
                var s = new StringBuilder(_tokens[_i++]);
                while (_i < _tokens.Count && _isString[_i]) s.Append(_tokens[_i++]); // adjacent literals concatenate
                return new Literal(s.ToString());
            }
            var t = _tokens[_i++];
            if (t == "(")
            {
                var inner = Parse();
                Expect(")");
                return inner;
            }
            if (t == "[")
            {
                var items = new List<Expr>();
                while (!PeekIs("]")) { items.Add(Parse()); if (!TryKeyword(",")) break; }
                Expect("]");
                return new ListExpr(items);
            }
            if (t == "{")
            {
                var items = new List<(Expr, Expr)>();
                while (!PeekIs("}")) { var k = Parse(); Expect(":"); items.Add((k, Parse())); if (!TryKeyword(",")) break; }
                Expect("}");
                return new DictExpr(items);
            }
            if (char.IsDigit(t[0]))
                return t.Contains('.') ? new Literal(double.Parse(t, CultureInfo.InvariantCulture)) : new Literal(long.Parse(t, CultureInfo.InvariantCulture));
            return t switch
            {
                "true" or "True" => new Literal(true),
                "false" or "False" => new Literal(false),
                "none" or "None" => new Literal(null),
                _ when char.IsLetter(t[0]) || t[0] == '_' => new Name(t),
                _ => throw ErrorAt(_source, _offset, $"unexpected '{t}'"),
            };
        }
    }

    // ---- Evaluation ---------------------------------------------------------------------------------------------

    private void Execute(List<Node> nodes, Dictionary<string, object?> scope, StringBuilder output)
    {
        foreach (var node in nodes)
        {
            switch (node)
            {
                case TextNode t: output.Append(t.Text); break;
                case OutputNode o: output.Append(ToText(Eval(o.Value, scope))); break;
                case IfNode i:
                    foreach (var (condition, body) in i.Branches)
                    {
                        if (condition is null || Truthy(Eval(condition, scope))) { Execute(body, scope, output); break; }
                    }
                    break;
                case SetNode s:
                    var value = Eval(s.Value, scope);
                    if (s.Target.Count == 1) scope[s.Target[0]] = value;
                    else if (scope.TryGetValue(s.Target[0], out var ns) && ns is Namespace n) n[s.Target[1]] = value;
                    else throw new RlhfException($"chat template: cannot set {string.Join('.', s.Target)} (only namespace() attributes can be set)");
                    break;
                case ForNode f:
                    var items = Iterate(Eval(f.Iterable, scope)).ToList();
                    // A for loop has its own scope in Jinja: variables set inside do not leak out (namespace() does).
                    var inner = new Dictionary<string, object?>(scope);
                    if (f.Filter is not null)
                        items = items.Where(item => { Bind(f.Targets, item, inner); return Truthy(Eval(f.Filter, inner)); }).ToList();
                    for (int k = 0; k < items.Count; k++)
                    {
                        Bind(f.Targets, items[k], inner);
                        inner["loop"] = new Loop(k, items.Count);
                        Execute(f.Body, inner, output);
                    }
                    if (items.Count == 0 && f.Else is not null) Execute(f.Else, scope, output);
                    break;
            }
        }
    }

    private static void Bind(List<string> targets, object? item, Dictionary<string, object?> scope)
    {
        if (targets.Count == 1) { scope[targets[0]] = item; return; }
        var values = Iterate(item).ToList();
        for (int k = 0; k < targets.Count; k++) scope[targets[k]] = k < values.Count ? values[k] : Undefined.Value;
    }

    private static IEnumerable<object?> Iterate(object? value) => value switch
    {
        string s => s.EnumerateRunes().Select(r => (object?)r.ToString()),
        IDictionary<string, object?> d => d.Keys,
        IEnumerable<object?> list => list,
        Undefined or null => [],
        _ => throw new RlhfException($"chat template: cannot loop over {TypeName(value)}"),
    };

    private object? Eval(Expr expr, Dictionary<string, object?> scope)
    {
        switch (expr)
        {
            case Literal l: return l.Value;
            case Name n: return scope.TryGetValue(n.Id, out var v) ? v : Undefined.Value;
            case ListExpr l: return l.Items.Select(x => Eval(x, scope)).ToList();
            case DictExpr dict: return dict.Items.ToDictionary(x => ToText(Eval(x.Key, scope)), x => Eval(x.Value, scope));
            case Attr a: return GetAttr(Eval(a.Target, scope), a.Key);
            case Item i:
            {
                var target = Eval(i.Target, scope);
                var key = Eval(i.Key, scope);
                return key is string s ? GetAttr(target, s) : GetIndex(target, key);
            }
            case SliceExpr s:
            {
                var target = Eval(s.Target, scope);
                var list = target is string str ? str.Select(c => (object?)c.ToString()).ToList() : Iterate(target).ToList();
                int n = list.Count;
                int Norm(object? x, int fallback) => x is null or Undefined ? fallback : (int)Math.Clamp(ToLong(x) < 0 ? ToLong(x) + n : ToLong(x), 0, n);
                int start = Norm(s.Start is null ? null : Eval(s.Start, scope), 0), stop = Norm(s.Stop is null ? null : Eval(s.Stop, scope), n);
                var slice = stop > start ? list.GetRange(start, stop - start) : [];
                return target is string ? string.Concat(slice) : slice;
            }
            case Conditional c: return Truthy(Eval(c.Condition, scope)) ? Eval(c.Then, scope) : c.Else is null ? Undefined.Value : Eval(c.Else, scope);
            case Unary u:
                var operand = Eval(u.Operand, scope);
                return u.Op == "not" ? !Truthy(operand) : operand is double d ? -d : (object)(-ToLong(operand));
            case Binary b: return EvalBinary(b, scope);
            case Filter f: return ApplyFilter(f.Name, Eval(f.Target, scope), f.Args.Select(x => Eval(x, scope)).ToList());
            case Test t:
            {
                var value = Eval(t.Target, scope);
                bool result = t.Name switch
                {
                    "defined" => value is not Undefined,
                    "undefined" => value is Undefined,
                    "none" => value is null,
                    "string" => value is string,
                    "number" => value is long or double,
                    "boolean" => value is bool,
                    "mapping" => value is IDictionary<string, object?>,
                    "sequence" or "iterable" => value is string or IEnumerable<object?>,
                    "true" => value is true,
                    "false" => value is false,
                    "even" => ToLong(value) % 2 == 0,
                    "odd" => ToLong(value) % 2 != 0,
                    "equalto" or "eq" => Equal(value, Eval(t.Args[0], scope)),
                    _ => throw new RlhfException($"chat template: unsupported test 'is {t.Name}'"),
                };
                return result != t.Negated;
            }
            case Call c: return EvalCall(c, scope);
            default: throw new RlhfException("chat template: unsupported expression");
        }
    }

    private object? EvalBinary(Binary b, Dictionary<string, object?> scope)
    {
        if (b.Op == "and") { var l = Eval(b.Left, scope); return Truthy(l) ? Eval(b.Right, scope) : l; }
        if (b.Op == "or") { var l = Eval(b.Left, scope); return Truthy(l) ? l : Eval(b.Right, scope); }
        var left = Eval(b.Left, scope);
        var right = Eval(b.Right, scope);
        switch (b.Op)
        {
            case "==": return Equal(left, right);
            case "!=": return !Equal(left, right);
            case "~": return ToText(left) + ToText(right);
            case "in":
                return right switch
                {
                    string s => s.Contains(ToText(left), StringComparison.Ordinal),
                    IDictionary<string, object?> d => left is string k && d.ContainsKey(k),
                    IEnumerable<object?> list => list.Any(x => Equal(x, left)),
                    _ => false,
                };
            case "+":
                if (left is string ls && right is string rs) return ls + rs;
                if (left is List<object?> ll && right is List<object?> rl) return ll.Concat(rl).ToList();
                if (left is string || right is string)
                    throw new RlhfException($"chat template: cannot add {TypeName(left)} and {TypeName(right)}");
                return Arithmetic(left, right, (x, y) => x + y, (x, y) => x + y);
            case "-": return Arithmetic(left, right, (x, y) => x - y, (x, y) => x - y);
            case "*":
                if (left is string sl) return string.Concat(Enumerable.Repeat(sl, (int)Math.Max(0, ToLong(right))));
                return Arithmetic(left, right, (x, y) => x * y, (x, y) => x * y);
            case "/": return ToDouble(left) / ToDouble(right);
            case "//": return Arithmetic(left, right, (x, y) => (long)Math.Floor((double)x / y), (x, y) => Math.Floor(x / y));
            case "%":
                // Python's modulo takes the divisor's sign.
                return Arithmetic(left, right, (x, y) => ((x % y) + y) % y, (x, y) => x - y * Math.Floor(x / y));
            default:
                int cmp = Compare(left, right);
                return b.Op switch { "<" => cmp < 0, ">" => cmp > 0, "<=" => cmp <= 0, _ => cmp >= 0 };
        }
    }

    private object? EvalCall(Call c, Dictionary<string, object?> scope)
    {
        var args = c.Args.Select(x => Eval(x, scope)).ToList();
        if (c.Target is Name { Id: "raise_exception" })
            throw new RlhfException($"chat template raised: {(args.Count > 0 ? ToText(args[0]) : "")}");
        if (c.Target is Name { Id: "namespace" })
        {
            var ns = new Namespace();
            foreach (var (key, value) in c.Kwargs) ns[key] = Eval(value, scope);
            return ns;
        }
        if (c.Target is Name { Id: "range" })
        {
            long start = args.Count > 1 ? ToLong(args[0]) : 0, stop = ToLong(args[args.Count > 1 ? 1 : 0]);
            return Enumerable.Range((int)start, (int)Math.Max(0, stop - start)).Select(x => (object?)(long)x).ToList();
        }
        if (c.Target is Attr { Target: var targetExpr, Key: var method })
        {
            var target = Eval(targetExpr, scope);
            if (target is string s)
            {
                return method switch
                {
                    "strip" => args.Count > 0 ? s.Trim(ToText(args[0]).ToCharArray()) : s.Trim(),
                    "lstrip" => args.Count > 0 ? s.TrimStart(ToText(args[0]).ToCharArray()) : s.TrimStart(),
                    "rstrip" => args.Count > 0 ? s.TrimEnd(ToText(args[0]).ToCharArray()) : s.TrimEnd(),
                    "startswith" => s.StartsWith(ToText(args[0]), StringComparison.Ordinal),
                    "endswith" => s.EndsWith(ToText(args[0]), StringComparison.Ordinal),
                    "upper" => s.ToUpperInvariant(),
                    "lower" => s.ToLowerInvariant(),
                    "title" => CultureInfo.InvariantCulture.TextInfo.ToTitleCase(s.ToLowerInvariant()),
                    "replace" => s.Replace(ToText(args[0]), ToText(args[1]), StringComparison.Ordinal),
                    "split" => (args.Count > 0 ? s.Split(ToText(args[0])) : s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).Select(x => (object?)x).ToList(),
                    _ => throw new RlhfException($"chat template: unsupported string method '{method}'"),
                };
            }
            if (target is IDictionary<string, object?> d)
            {
                return method switch
                {
                    "get" => d.TryGetValue(ToText(args[0]), out var v) ? v : args.Count > 1 ? args[1] : null,
                    "items" => d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
                    "keys" => d.Keys.Select(k => (object?)k).ToList(),
                    "values" => d.Values.ToList(),
                    _ => throw new RlhfException($"chat template: unsupported mapping method '{method}'"),
                };
            }
        }
        throw new RlhfException("chat template: unsupported function call");
    }

    private static object? ApplyFilter(string name, object? value, List<object?> args) => name switch
    {
        "trim" => ToText(value).Trim(),
        "upper" => ToText(value).ToUpperInvariant(),
        "lower" => ToText(value).ToLowerInvariant(),
        "string" => ToText(value),
        "length" or "count" => value switch
        {
            string s => (long)s.EnumerateRunes().Count(),
            IDictionary<string, object?> d => (long)d.Count,
            IEnumerable<object?> l => (long)l.Count(),
            _ => 0L,
        },
        "first" => Iterate(value).FirstOrDefault(),
        "last" => Iterate(value).LastOrDefault(),
        "join" => string.Join(args.Count > 0 ? ToText(args[0]) : "", Iterate(value).Select(ToText)),
        "default" or "d" => value is Undefined || (args.Count > 1 && Truthy(args[1]) && !Truthy(value)) ? (args.Count > 0 ? args[0] : "") : value,
        "tojson" => ToJson(value, args.Count > 0 ? (int?)ToLong(args[0]) : null),
        "int" => value is string s2 && long.TryParse(s2, out var parsed) ? parsed : ToLong(value),
        "list" => Iterate(value).ToList(),
        _ => throw new RlhfException($"chat template: unsupported filter '{name}'"),
    };

    private static object? GetAttr(object? target, string key) => target switch
    {
        IDictionary<string, object?> d => d.TryGetValue(key, out var v) ? v : Undefined.Value,
        Loop loop => key switch
        {
            "index0" => (long)loop.Index0,
            "index" => (long)loop.Index0 + 1,
            "revindex" => (long)(loop.Length - loop.Index0),
            "revindex0" => (long)(loop.Length - loop.Index0 - 1),
            "first" => loop.Index0 == 0,
            "last" => loop.Index0 == loop.Length - 1,
            "length" => (long)loop.Length,
            _ => Undefined.Value,
        },
        _ => Undefined.Value,
    };

    private static object? GetIndex(object? target, object? key)
    {
        if (target is IReadOnlyList<object?> list && key is long or int)
        {
            long k = ToLong(key);
            if (k < 0) k += list.Count;
            return k >= 0 && k < list.Count ? list[(int)k] : Undefined.Value;
        }
        if (target is string s && key is long or int)
        {
            long k = ToLong(key);
            if (k < 0) k += s.Length;
            return k >= 0 && k < s.Length ? s[(int)k].ToString() : Undefined.Value;
        }
        return Undefined.Value;
    }

    private static bool Truthy(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        IDictionary<string, object?> d => d.Count > 0,
        IEnumerable<object?> l => l.Any(),
        _ => true,
    };

    private static bool Equal(object? a, object? b) => (a, b) switch
    {
        (null or Undefined, null or Undefined) => a?.GetType() == b?.GetType(),
        (long or double or int, long or double or int) => ToDouble(a) == ToDouble(b),
        (bool x, bool y) => x == y,
        (string x, string y) => x == y,
        _ => Equals(a, b),
    };

    private static int Compare(object? a, object? b) => (a, b) switch
    {
        (string x, string y) => string.CompareOrdinal(x, y),
        _ => ToDouble(a).CompareTo(ToDouble(b)),
    };

    private static object Arithmetic(object? a, object? b, Func<long, long, long> ints, Func<double, double, double> doubles) =>
        a is double || b is double ? doubles(ToDouble(a), ToDouble(b)) : (object)ints(ToLong(a), ToLong(b));

    private static long ToLong(object? v) => v switch
    {
        long l => l,
        int i => i,
        double d => (long)d,
        bool b => b ? 1 : 0,
        _ => throw new RlhfException($"chat template: expected a number, got {TypeName(v)}"),
    };

    private static double ToDouble(object? v) => v is double d ? d : ToLong(v);

    private static string TypeName(object? v) => v switch
    {
        null => "none",
        Undefined => "an undefined value",
        string => "a string",
        _ => v.GetType().Name.ToLowerInvariant(),
    };

    /// <summary>Python's <c>str()</c> of a value, as Jinja prints it.</summary>
    private static string ToText(object? value) => value switch
    {
        null => "None",
        Undefined => "",
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d == Math.Floor(d) && Math.Abs(d) < 1e16 ? d.ToString("0.0", CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture),
        _ => ToJson(value, null),
    };

    /// <summary>transformers' <c>tojson</c>: <c>json.dumps(x, ensure_ascii=False, indent=indent)</c>, with Python's ", " and ": " separators.</summary>
    private static string ToJson(object? value, int? indent)
    {
        var sb = new StringBuilder();
        void Write(object? v, int depth)
        {
            string Newline(int d) => indent is int n ? "\n" + new string(' ', n * d) : "";
            string itemSeparator = indent is null ? ", " : ",";
            switch (v)
            {
                case null or Undefined: sb.Append("null"); break;
                case bool b: sb.Append(b ? "true" : "false"); break;
                case long or int or double: sb.Append(ToText(v)); break;
                case string s: sb.Append(JsonSerializer.Serialize(s, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })); break;
                case IDictionary<string, object?> d:
                    if (d.Count == 0) { sb.Append("{}"); break; }
                    sb.Append('{');
                    int k = 0;
                    foreach (var (key, item) in d)
                    {
                        if (k++ > 0) sb.Append(itemSeparator);
                        sb.Append(Newline(depth + 1));
                        Write(key, depth + 1);
                        sb.Append(": ");
                        Write(item, depth + 1);
                    }
                    sb.Append(Newline(depth)).Append('}');
                    break;
                case IEnumerable<object?> list:
                    var items = list.ToList();
                    if (items.Count == 0) { sb.Append("[]"); break; }
                    sb.Append('[');
                    for (int i = 0; i < items.Count; i++)
                    {
                        if (i > 0) sb.Append(itemSeparator);
                        sb.Append(Newline(depth + 1));
                        Write(items[i], depth + 1);
                    }
                    sb.Append(Newline(depth)).Append(']');
                    break;
                default: sb.Append(JsonSerializer.Serialize(v)); break;
            }
        }
        Write(value, 0);
        return sb.ToString();
    }

    /// <inheritdoc/>
    public override string ToString() => _source;
}
