using System.Reflection;

namespace RlhfSharp.Recipes;

/// <summary>
/// Reads a run's configuration: a recipe file (JSON) → <c>--set key=value</c> overrides → a typed record with
/// every default filled in. Keys are snake_case; an unknown key or a wrong type is an error naming the key.
/// </summary>
public static class Recipe
{
    public static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Loads <paramref name="path"/> (or defaults when null), applies overrides, returns the typed config.</summary>
    /// <param name="note">Told what was left out when the file is a recipe of another command that this one adopts
    /// (<see cref="RecipeForAttribute.Adopts"/>: a stage command given the pipeline's recipe).</param>
    public static T Load<T>(string? path, IEnumerable<string>? overrides = null, Action<string>? note = null) where T : new()
    {
        JsonObject root;
        if (path is null) root = JsonSerializer.SerializeToNode(new T(), Json)!.AsObject();
        else
        {
            if (!File.Exists(path)) throw new RlhfException($"{path}: recipe file not found.");
            string text;
            try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path)); }
            catch (DecoderFallbackException e) { throw new RlhfException($"{path}: not valid UTF-8 (byte {e.Index}); save the recipe as UTF-8."); }
            // A byte-order mark (Windows editors write one) is read as the data files' is: skipped (RFC 8259 §8.1 lets parsers ignore it).
            if (text.StartsWith('\uFEFF')) text = text[1..];
            if (StrictJson.FindDefect(text, JsonCommentHandling.Skip, allowTrailingCommas: true) is { } defect) throw new RlhfException($"{path}: {defect.Message}.");
            try { root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject ?? throw new RlhfException($"{path}: a recipe must be a JSON object."); }
            catch (JsonException e) { throw new RlhfException($"{path}: invalid JSON at line {e.LineNumber + 1} ({e.Message})."); }
        }
        var reader = typeof(T).GetCustomAttribute<RecipeForAttribute>()?.Reader ?? "this command";
        if (path is not null && typeof(T).GetCustomAttribute<RecipeForAttribute>()?.Adopts is { } adopted) root = Adopt(root, typeof(T), adopted, path, reader, note);
        if (path is not null) root = Overlay(JsonSerializer.SerializeToNode(new T(), Json)!.AsObject(), root, typeof(T));
        foreach (var o in overrides ?? []) Apply(root, o, typeof(T));
        string source = path ?? "recipe";
        var others = typeof(T).Assembly.GetTypes()
            .Where(t => t != typeof(T) && t.GetCustomAttribute<RecipeForAttribute>() is not null)
            .Select(t => (t, t.GetCustomAttribute<RecipeForAttribute>()!.Reader)).ToList();
        RecipeSchema.Check(root, typeof(T), source, reader, others);
        T config;
        try { config = root.Deserialize<T>(Json) ?? new T(); }
        catch (JsonException e)
        {
            throw new RlhfException($"{source}: {Describe(e)}");
        }
        Validate(config!, "", source);
        CrossCheck(config!, "", source);
        return config;
    }

    /// <summary>
    /// A file of <paramref name="adopted"/>'s recipe read as <paramref name="type"/>'s: when every key of
    /// <paramref name="root"/> is one of <paramref name="adopted"/>'s and some are not <paramref name="type"/>'s, the keys
    /// both take with the same type (model, the stage sections) are kept and the others dropped, with a note saying so.
    /// Any other file is returned as it is, for the schema check to name its unknown key.
    /// </summary>
    static JsonObject Adopt(JsonObject root, Type type, Type adopted, string path, string reader, Action<string>? note)
    {
        var own = RecipeSchema.Keys(type).ToDictionary(k => k.Key, k => k.Property.PropertyType);
        var theirs = RecipeSchema.Keys(adopted).ToDictionary(k => k.Key, k => k.Property.PropertyType);
        var keys = root.Select(kv => kv.Key).ToList();
        if (keys.All(own.ContainsKey) || !keys.All(theirs.ContainsKey)) return root;
        var kept = keys.Where(k => own.TryGetValue(k, out var t) && t == theirs[k]).ToList();
        var dropped = keys.Except(kept).ToList();
        var result = new JsonObject();
        foreach (var key in kept) result[key] = root[key]?.DeepClone();
        string otherReader = adopted.GetCustomAttribute<RecipeForAttribute>()?.Reader ?? "another command";
        note?.Invoke($"{path} is the recipe of {otherReader}; {reader} take its {string.Join(", ", kept)} " +
                     $"and leave {string.Join(", ", dropped)} to it. It names no data files (the pipeline makes its own): give yours with --set, e.g. --set sft_data=FILE.");
        return result;
    }

    /// <summary>
    /// Runs each section's own cross-field checks (<see cref="StageConfig.Validate"/>, e.g. <c>sft.lora.r</c> ≥ 1,
    /// <c>ppo.mini_batch_size</c> ≤ <c>ppo.rollout_batch_size</c>) when the recipe is read, so a mistake in a late stage
    /// stops the run before the early stages have spent minutes.
    /// </summary>
    static void CrossCheck(object config, string prefix, string source)
    {
        try
        {
            if (config is StageConfig stage) stage.Validate(prefix.TrimEnd('.'));
            else if (config.GetType().GetMethod("Validate", BindingFlags.Public | BindingFlags.Instance, Type.EmptyTypes) is { } validate) validate.Invoke(config, null);
        }
        catch (TargetInvocationException e) when (e.InnerException is RlhfException inner) { throw new RlhfException($"{source}: {inner.Message}"); }
        catch (RlhfException e) { throw new RlhfException($"{source}: {e.Message}"); }
        foreach (var (key, property) in RecipeSchema.Keys(config.GetType()))
            if (property.GetValue(config) is { } value && value.GetType() is { IsClass: true } type && type != typeof(string) && type.Namespace?.StartsWith("RlhfSharp", StringComparison.Ordinal) == true)
                CrossCheck(value, prefix + key + ".", source);
    }

    /// <summary>
    /// Checks every <see cref="RangeAttribute"/> of the config and its sections, so a batch size of 0 or a negative learning
    /// rate is refused up front with its key, instead of dividing by zero or looping forever mid-run.
    /// </summary>
    static void Validate(object config, string prefix, string source)
    {
        foreach (var property in config.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            // Only what a recipe can set: computed properties (a config derived from this one) would recurse forever.
            if (property.GetIndexParameters().Length > 0 || !property.CanRead || property.SetMethod is null || property.IsDefined(typeof(JsonIgnoreAttribute))) continue;
            object? value = property.GetValue(config);
            string key = prefix + Json.PropertyNamingPolicy!.ConvertName(property.Name);
            // "sft": null in a recipe replaces the whole section with nothing; refuse it here rather than fail mid-run.
            if (value is null && !property.PropertyType.IsValueType && new NullabilityInfoContext().Create(property).WriteState == NullabilityState.NotNull)
                throw new RlhfException($"{source}: {key} must not be null: give {(property.PropertyType == typeof(string) ? "a string" : "a value")} or leave the key out for its default.");
            if (property.GetCustomAttribute<RangeAttribute>() is { } range && value is not null && !range.IsValid(value))
                throw new RlhfException($"{source}: {key} must be {RecipeSchema.Describe(range)}, got {Convert.ToString(value, CultureInfo.InvariantCulture)}.");
            if (value is not null && value.GetType() is { IsClass: true } type && type != typeof(string) && type.Namespace?.StartsWith("RlhfSharp", StringComparison.Ordinal) == true)
                Validate(value, key + ".", source);
        }
    }

    static string Describe(JsonException e)
    {
        string where = e.Path is { Length: > 2 } p ? $" at '{p.TrimStart('$', '.')}'" : "";
        // The parser's own sentence names .NET types ("could not be mapped to any .NET member contained in type ..."): say it plainly.
        // RecipeSchema.Check has refused what it can name; whatever is left is said without the parser's .NET type names.
        if (e.Message.Contains("could not be mapped")) return $"unknown key{where} (a typo, or a key of another section?)";
        return $"bad value{where}.";
    }

    /// <summary>
    /// Lays a recipe file's keys over <paramref name="defaults"/> (<paramref name="type"/>'s, serialized), so a section the file
    /// gives in part keeps the defaults of the keys it leaves out. Deserializing the file alone would build such a section
    /// from its class's defaults and drop the ones its parent sets: <c>{"sft": {"epochs": 3}}</c> in a pipeline recipe would
    /// also have reset the pipeline's SFT learning rate.
    /// </summary>
    static JsonObject Overlay(JsonObject defaults, JsonObject file, Type type)
    {
        var keys = RecipeSchema.Keys(type).ToDictionary(k => k.Key, k => k.Property.PropertyType);
        foreach (var (key, value) in file.ToList())
        {
            // Unknown keys go through untouched, for the schema check to name them.
            if (value is JsonObject section && keys.TryGetValue(key, out var sectionType) && SectionDefaults(sectionType) is { } sectionDefaults)
                defaults[key] = Overlay(defaults[key] is JsonObject own ? (JsonObject)own.DeepClone() : sectionDefaults, section, Nullable.GetUnderlyingType(sectionType) ?? sectionType);
            else defaults[key] = value?.DeepClone();
        }
        return defaults;
    }

    /// <summary>A config section's defaults as JSON (a record of this assembly); null for values, lists and maps, which a recipe replaces whole.</summary>
    static JsonObject? SectionDefaults(Type type) =>
        type.IsClass && type != typeof(string) && type.Namespace?.StartsWith("RlhfSharp", StringComparison.Ordinal) == true && type.GetConstructor(Type.EmptyTypes) is not null
            ? JsonSerializer.SerializeToNode(Activator.CreateInstance(type), type, Json) as JsonObject
            : null;

    /// <summary>Applies <c>a.b.c=value</c>; the value is read as JSON when it parses (numbers, true, [..]) and as a string otherwise.</summary>
    /// <param name="type">The recipe's type: a section the assignment creates (<c>encoder_decoder.sft.epochs=2</c> when the recipe has
    /// no <c>encoder_decoder</c>) starts from its defaults rather than from nothing.</param>
    public static void Apply(JsonObject root, string assignment, Type? type = null)
    {
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new RlhfException($"--set '{assignment}': expected key=value (e.g. ppo.steps=20).");
        string[] path = assignment[..eq].Trim().Split('.');
        string raw = assignment[(eq + 1)..];
        JsonNode? value;
        try { value = JsonNode.Parse(raw); }
        catch (JsonException) { value = JsonValue.Create(raw); }
        JsonObject node = root;
        for (int i = 0; i < path.Length - 1; i++)
        {
            var property = type is null ? null : RecipeSchema.Keys(type).FirstOrDefault(k => k.Key == path[i]).Property;
            type = property is null ? null : Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (node[path[i]] is JsonObject child) { node = child; continue; }
            if (node[path[i]] is not null) throw new RlhfException($"--set {assignment[..eq]}: '{path[i]}' is not a section.");
            var created = (type is null ? null : SectionDefaults(type)) ?? new JsonObject();
            node[path[i]] = created;
            node = created;
        }
        node[path[^1]] = value;
    }

    /// <summary>The dotted path of the first key whose value differs between two resolved recipes (JSON); null when they agree.</summary>
    public static string? FirstDifference(string a, string b)
    {
        JsonNode? x, y;
        try { x = JsonNode.Parse(a); y = JsonNode.Parse(b); }
        catch (JsonException) { return "(the saved recipe is not valid JSON)"; }
        return Difference(x, y, "");
    }

    static string? Difference(JsonNode? x, JsonNode? y, string path)
    {
        if (x is JsonObject ox && y is JsonObject oy)
        {
            foreach (var key in ox.Select(kv => kv.Key).Union(oy.Select(kv => kv.Key)))
                if (Difference(ox[key], oy[key], path.Length == 0 ? key : $"{path}.{key}") is string d) return d;
            return null;
        }
        return JsonNode.DeepEquals(x, y) ? null : path.Length == 0 ? "(root)" : path;
    }

    /// <summary>The resolved config as it is written to the run folder (every default written out).</summary>
    public static string Serialize<T>(T config) => JsonSerializer.Serialize(config, Json);

    public static string Format(double value) => value.ToString("0.####", CultureInfo.InvariantCulture);
}
