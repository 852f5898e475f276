using System.Collections;
using System.Reflection;

namespace RlhfSharp.Recipes;

/// <summary>
/// The keys a config record takes, read from its properties, and the check of a recipe's JSON against them before it is
/// deserialized. System.Text.Json's own errors name .NET types ("could not be mapped to any .NET member contained in type
/// RlhfSharp.Algorithms.Ppo.PpoConfig", "System.Int32"); this says it in the recipe's words: the key, the value it takes
/// (with the valid names of an enum), and the nearest key to a typo.
/// </summary>
public static class RecipeSchema
{
    /// <summary>The recipe keys of <paramref name="type"/> (snake_case), with their properties, in declaration order.</summary>
    public static IReadOnlyList<(string Key, PropertyInfo Property)> Keys(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && p.CanRead && p.SetMethod is not null && !p.IsDefined(typeof(JsonIgnoreAttribute)))
            .OrderBy(p => p.MetadataToken)
            .Select(p => (Recipe.Json.PropertyNamingPolicy!.ConvertName(p.Name), p))
            .ToList();

    /// <summary>
    /// Throws an <see cref="RlhfException"/> for the first key of <paramref name="node"/> that <paramref name="type"/> does
    /// not take, or whose value has the wrong kind. <paramref name="otherRecipes"/> names recipe types read by other
    /// commands, so a key of theirs is reported as such (a pipeline recipe given to a stage command).
    /// </summary>
    public static void Check(JsonObject node, Type type, string source, string reader, IReadOnlyList<(Type Type, string Reader)> otherRecipes) =>
        CheckObject(node, type, "", source, reader, otherRecipes);

    static void CheckObject(JsonObject node, Type type, string prefix, string source, string reader, IReadOnlyList<(Type Type, string Reader)> others)
    {
        var keys = Keys(type);
        foreach (var (key, value) in node)
        {
            string path = prefix + key;
            var match = keys.FirstOrDefault(k => k.Key == key);
            if (match.Property is null) throw new RlhfException($"{source}: {Unknown(key, path, prefix, keys, reader, others)}");
            CheckValue(value, match.Property.PropertyType, Nullable(match.Property), path, source);
        }
    }

    static string Unknown(string key, string path, string prefix, IReadOnlyList<(string Key, PropertyInfo Property)> keys, string reader,
        IReadOnlyList<(Type Type, string Reader)> others)
    {
        string section = prefix.Length == 0 ? $"the recipe of {reader}" : $"'{prefix.TrimEnd('.')}'";
        string takes = $"{section} takes: {string.Join(", ", keys.Select(k => k.Key))}.";
        if (prefix.Length == 0 && others.FirstOrDefault(o => Keys(o.Type).Any(k => k.Key == key)) is { Type: not null } other)
            return $"'{key}' is a key of the recipe of {other.Reader}, not of {reader}; {takes}";
        string? nearest = Nearest(key, keys.Select(k => k.Key));
        return $"unknown key '{path}'{(nearest is null ? "" : $" (did you mean '{prefix}{nearest}'?)")}; {takes}";
    }

    /// <summary>The key closest to a typo: one that contains it or ends with it (<c>epochs</c> → <c>ppo_epochs</c>), else within a third of its length in edits.</summary>
    public static string? Nearest(string typed, IEnumerable<string> valid)
    {
        var candidates = valid.ToList();
        var containing = candidates.Where(k => k.Contains(typed, StringComparison.OrdinalIgnoreCase) || typed.Contains(k, StringComparison.OrdinalIgnoreCase) && k.Length >= 3)
            .OrderBy(k => Math.Abs(k.Length - typed.Length)).FirstOrDefault();
        if (containing is not null) return containing;
        var best = candidates.Select(k => (Key: k, Distance: Distance(typed.ToLowerInvariant(), k))).OrderBy(x => x.Distance).FirstOrDefault();
        return best.Key is not null && best.Distance <= Math.Max(2, typed.Length / 3) ? best.Key : null;
    }

    /// <summary>Edit distance with adjacent transpositions (optimal string alignment): "setps" is one edit from "steps".</summary>
    static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }

    static bool Nullable(PropertyInfo p) =>
        System.Nullable.GetUnderlyingType(p.PropertyType) is not null || new NullabilityInfoContext().Create(p).WriteState != NullabilityState.NotNull;

    static void CheckValue(JsonNode? value, Type type, bool nullable, string path, string source)
    {
        var inner = System.Nullable.GetUnderlyingType(type) ?? type;
        if (value is null)
        {
            // A null section or string is refused later with "must not be null"; a null number has no later check.
            if (inner.IsValueType && !nullable) throw Wrong(path, inner, "null", source);
            return;
        }
        var kind = value.GetValueKind();
        if (inner == typeof(string)) { if (kind != JsonValueKind.String) throw Wrong(path, inner, Show(value), source); return; }
        if (inner == typeof(bool)) { if (kind is not (JsonValueKind.True or JsonValueKind.False)) throw Wrong(path, inner, Show(value), source); return; }
        if (inner.IsEnum)
        {
            if (kind != JsonValueKind.String || !Names(inner).Contains(value.GetValue<string>(), StringComparer.OrdinalIgnoreCase))
            {
                string? nearest = kind == JsonValueKind.String ? Nearest(value.GetValue<string>(), Names(inner)) : null;
                throw new RlhfException($"{source}: {path} must be {Expected(inner)}, got {Show(value)}{(nearest is null ? "" : $" (did you mean '{nearest}'?)")}.");
            }
            return;
        }
        if (inner == typeof(double) || inner == typeof(float))
        {
            bool named = kind == JsonValueKind.String && value.GetValue<string>() is "NaN" or "Infinity" or "-Infinity";
            if (kind != JsonValueKind.Number && !named) throw Wrong(path, inner, Show(value), source);
            return;
        }
        if (inner == typeof(int) || inner == typeof(long) || inner == typeof(ulong))
        {
            if (kind != JsonValueKind.Number) throw Wrong(path, inner, Show(value), source);
            bool fits = inner == typeof(int) ? value.AsValue().TryGetValue<int>(out _) : inner == typeof(long) ? value.AsValue().TryGetValue<long>(out _) : value.AsValue().TryGetValue<ulong>(out _);
            if (!fits) throw Wrong(path, inner, Show(value), source);
            return;
        }
        if (Element(inner) is Type element)
        {
            if (value is not JsonArray array) throw Wrong(path, inner, Show(value), source);
            for (int i = 0; i < array.Count; i++) CheckValue(array[i], element, false, $"{path}[{i}]", source);
            return;
        }
        if (inner.IsClass && inner.Namespace?.StartsWith("RlhfSharp", StringComparison.Ordinal) == true)
        {
            if (value is not JsonObject o) throw Wrong(path, inner, Show(value), source);
            CheckObject(o, inner, path + ".", source, "", []);
        }
    }

    static RlhfException Wrong(string path, Type type, string got, string source) => new($"{source}: {path} must be {Expected(type)}, got {got}.");

    /// <summary>What a value of <paramref name="type"/> is, in a recipe's words.</summary>
    public static string Expected(Type type)
    {
        type = System.Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string)) return "a string";
        if (type == typeof(bool)) return "true or false";
        if (type == typeof(int) || type == typeof(long)) return "an integer";
        if (type == typeof(ulong)) return "a whole number ≥ 0";
        if (type == typeof(double) || type == typeof(float)) return "a number";
        if (type.IsEnum) return $"one of {string.Join(", ", Names(type))}";
        if (Element(type) is Type element) return $"a list of {Plural(Expected(element))}";
        return $"an object with the keys {string.Join(", ", Keys(type).Select(k => k.Key))}";
    }

    static string Plural(string expected) => expected switch
    {
        "a string" => "strings",
        "an integer" => "integers",
        "a number" => "numbers",
        _ => expected.StartsWith("an object") ? "objects" + expected["an object".Length..] : $"values ({expected})",
    };

    static IEnumerable<string> Names(Type enumType) => Enum.GetNames(enumType).Select(n => Recipe.Json.PropertyNamingPolicy!.ConvertName(n));

    static Type? Element(Type type) =>
        type.IsArray ? type.GetElementType()
        : type.IsGenericType && type != typeof(string) && typeof(IEnumerable).IsAssignableFrom(type) && type.GetGenericArguments().Length == 1 ? type.GetGenericArguments()[0]
        : null;

    static string Show(JsonNode value)
    {
        string json = value.ToJsonString();
        return json.Length <= 40 ? json : json[..37] + "...";
    }

    /// <summary>A <see cref="RangeAttribute"/> in words: "≥ 1", "in (0, 1]".</summary>
    public static string Describe(RangeAttribute r)
    {
        bool openEnded = r.Maximum is int.MaxValue or double.MaxValue;
        if (openEnded) return $"{(r.MinimumIsExclusive ? ">" : "≥")} {Convert.ToString(r.Minimum, CultureInfo.InvariantCulture)}{(r.Maximum is double ? " and finite" : "")}";
        return $"in {(r.MinimumIsExclusive ? "(" : "[")}{Convert.ToString(r.Minimum, CultureInfo.InvariantCulture)}, {Convert.ToString(r.Maximum, CultureInfo.InvariantCulture)}{(r.MaximumIsExclusive ? ")" : "]")}";
    }
}
