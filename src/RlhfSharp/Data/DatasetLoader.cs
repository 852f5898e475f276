using RlhfSharp.Tokenization;

namespace RlhfSharp.Data;

/// <summary>
/// Loads typed records from a dataset file (any format <see cref="DatasetReader"/> reads). The row format is
/// detected per row from the TRL field names (<see cref="DatasetFormats.Detect"/>) after the optional
/// <see cref="FieldMap"/> renames columns. A malformed row is an <see cref="RlhfException"/> whose message starts
/// with "file:line:" and gives the reason; with <c>skipInvalid</c> it is skipped and counted in
/// <see cref="LoadResult{T}.Skipped"/> instead. File-level problems (missing file, unknown extension, a .json that
/// is not a list) always throw. A path <c>hf://datasets/org/name[@revision]/file</c> is read from the Hub (<see cref="Hub.HubResolver"/>).
/// </summary>
public static class DatasetLoader
{
    /// <summary>The longest string field accepted (characters): a sanity cap against a wrong column or a corrupt file.</summary>
    public const int MaxFieldChars = 1_000_000;

    /// <summary>
    /// SFT demonstrations from <c>prompt</c>/<c>completion</c> rows, <c>messages</c> rows (at least one assistant turn)
    /// or <c>text</c> rows (empty prompt: the loss covers the whole text).
    /// </summary>
    public static LoadResult<Demonstration> LoadDemonstrations(string path, FieldMap? fieldMap = null, bool skipInvalid = false) =>
        Load<Demonstration>(path, fieldMap, skipInvalid, (format, row) => format switch
        {
            DatasetFormat.PromptCompletion => [new Demonstration(row.String("prompt", allowEmpty: true), row.String("completion"))],
            DatasetFormat.Messages => [Conversation(row)],
            DatasetFormat.Text => [new Demonstration("", row.String("text"))],
            _ => throw WrongFormat(format, "demonstrations", "prompt + completion, messages, or text"),
        });

    /// <summary>
    /// Pairwise preferences from <c>prompt</c>/<c>chosen</c>/<c>rejected</c> rows (optional <c>margin</c>) or
    /// implicit-prompt <c>chosen</c>/<c>rejected</c> rows. Implicit rows in HH-RLHF form are split at the last
    /// "\n\nAssistant:" (<see cref="HhDialogue.Split"/>); both must share that prompt, except that when
    /// one response contains an invented later turn the shorter, shared prompt is used; implicit rows without the
    /// marker get an empty prompt and the whole strings as responses.
    /// </summary>
    public static LoadResult<Preference> LoadPreferences(string path, FieldMap? fieldMap = null, bool skipInvalid = false) =>
        Load<Preference>(path, fieldMap, skipInvalid, (format, row) => format switch
        {
            DatasetFormat.Preference or DatasetFormat.ImplicitPreference => [Pair(format, row)],
            _ => throw WrongFormat(format, "preferences", "prompt + chosen + rejected, or chosen + rejected"),
        });

    /// <summary>
    /// K-wise rankings from <c>prompt</c>/<c>responses</c>/<c>ranking</c> rows, where <c>ranking</c> lists response
    /// indices (0-based) from best to worst: <c>"ranking": [2, 0, 1]</c> means responses[2] is best. It must be a
    /// permutation of 0..K-1, K ≥ 2. Pairwise preference rows load as K = 2 rankings [chosen, rejected]. An optional
    /// <c>subset</c> string (RewardBench's column) is kept in <see cref="Ranking.Subset"/>.
    /// </summary>
    public static LoadResult<Ranking> LoadRankings(string path, FieldMap? fieldMap = null, bool skipInvalid = false) =>
        Load<Ranking>(path, fieldMap, skipInvalid, (format, row) => format switch
        {
            DatasetFormat.Ranking => [Ranked(row) with { Subset = row.OptionalString("subset") }],
            DatasetFormat.Preference or DatasetFormat.ImplicitPreference =>
                [ToRanking(Pair(format, row)) with { Subset = row.OptionalString("subset") }],
            _ => throw WrongFormat(format, "rankings", "prompt + responses + ranking, or preference pairs"),
        });

    /// <summary>
    /// Prompts for online RL: the <c>prompt</c> of any row that has one (prompt-only, prompt/completion, KTO,
    /// preference and ranking rows), or the HH-RLHF prompt of an implicit preference row. Not deduplicated.
    /// </summary>
    public static LoadResult<PromptRecord> LoadPrompts(string path, FieldMap? fieldMap = null, bool skipInvalid = false) =>
        Load<PromptRecord>(path, fieldMap, skipInvalid, (format, row) => format switch
        {
            DatasetFormat.PromptOnly or DatasetFormat.PromptCompletion or DatasetFormat.Labeled or DatasetFormat.Preference
                or DatasetFormat.Ranking => [new PromptRecord(row.String("prompt"))],
            DatasetFormat.ImplicitPreference => [Pair(format, row) is { Prompt.Length: > 0 } p ? new PromptRecord(p.Prompt)
                : throw new BadRowException("chosen/rejected have no \"\\n\\nAssistant:\" turn to split a prompt from")],
            _ => throw WrongFormat(format, "prompts", "a prompt field"),
        });

    /// <summary>
    /// Prompts for <c>rlhf eval</c>, each with its reference when the row has one: the <c>completion</c> of a
    /// prompt/completion row, or a <c>reference</c> column. Rows without a reference stay (reference null), so the
    /// reference metrics can score the rows that have one instead of none.
    /// </summary>
    public static LoadResult<EvalPrompt> LoadEvalPrompts(string path, FieldMap? fieldMap = null) =>
        Load<EvalPrompt>(path, fieldMap, false, (format, row) => format switch
        {
            DatasetFormat.PromptCompletion => [new EvalPrompt(row.String("prompt"), row.Row["reference"] is not null ? row.String("reference", allowEmpty: true)
                : row.Row["completion"] is null ? null : row.String("completion", allowEmpty: true))],
            DatasetFormat.PromptOnly => [new EvalPrompt(row.String("prompt"), row.Row["reference"] is null ? null : row.String("reference", allowEmpty: true))],
            DatasetFormat.Labeled or DatasetFormat.Preference or DatasetFormat.Ranking => [new EvalPrompt(row.String("prompt"), null)],
            DatasetFormat.ImplicitPreference => [Pair(format, row) is { Prompt.Length: > 0 } p ? new EvalPrompt(p.Prompt, null)
                : throw new BadRowException("chosen/rejected have no \"\\n\\nAssistant:\" turn to split a prompt from")],
            _ => throw WrongFormat(format, "evaluation prompts", "a prompt field, and optionally completion or reference"),
        });

    /// <summary>
    /// KTO examples from <c>prompt</c>/<c>completion</c>/<c>label</c> rows (label: a boolean, or "true"/"false"/1/0
    /// in CSV). A file of preference rows gives two examples per row, chosen desirable and rejected undesirable, in
    /// TRL's order (<see cref="LabeledCompletion.Unpair"/>: each block's chosen, then its rejected).
    /// </summary>
    public static LoadResult<LabeledCompletion> LoadLabeled(string path, FieldMap? fieldMap = null, bool skipInvalid = false)
    {
        var pairs = new List<Preference>();
        var loaded = Load<LabeledCompletion>(path, fieldMap, skipInvalid, (format, row) => format switch
        {
            DatasetFormat.Labeled => [new LabeledCompletion(row.String("prompt", allowEmpty: true), row.String("completion"), row.Bool("label"))],
            DatasetFormat.Preference or DatasetFormat.ImplicitPreference => Unpair(pairs, Pair(format, row)),
            _ => throw WrongFormat(format, "labeled completions", "prompt + completion + label"),
        });
        return pairs.Count * 2 == loaded.Records.Count ? loaded with { Records = LabeledCompletion.Unpair(pairs) } : loaded;
    }

    /// <summary>
    /// Scored completions for offline RL (ILQL) from <c>prompt</c>/<c>completion</c>/<c>reward</c> rows (reward: a
    /// finite number); ranking rows give every response scored by rank and preference rows chosen 1, rejected 0
    /// (<see cref="ScoredCompletion.FromRanking"/>).
    /// </summary>
    public static LoadResult<ScoredCompletion> LoadScored(string path, FieldMap? fieldMap = null, bool skipInvalid = false) =>
        Load<ScoredCompletion>(path, fieldMap, skipInvalid, (format, row) => format switch
        {
            DatasetFormat.PromptCompletion => [new ScoredCompletion(row.String("prompt", allowEmpty: true), row.String("completion"),
                row.OptionalNumber("reward") ?? throw new BadRowException("field \"reward\" is missing: a scored completion needs a number"))],
            DatasetFormat.Ranking => [.. ScoredCompletion.FromRanking(Ranked(row))],
            DatasetFormat.Preference or DatasetFormat.ImplicitPreference => [.. ScoredCompletion.FromRanking(ToRanking(Pair(format, row)))],
            _ => throw WrongFormat(format, "scored completions", "prompt + completion + reward, rankings, or preference pairs"),
        });

    /// <summary>
    /// Step-labelled completions for a process reward model from TRL's stepwise-supervision rows: <c>prompt</c>,
    /// <c>completions</c> (the steps) and <c>labels</c> (one per step, <see cref="RowFields.StepLabels"/>).
    /// </summary>
    public static LoadResult<StepwiseCompletion> LoadStepwise(string path, FieldMap? fieldMap = null, bool skipInvalid = false) =>
        Load<StepwiseCompletion>(path, fieldMap, skipInvalid, (format, row) =>
        {
            if (!row.Has("completions") || !row.Has("labels"))
                throw new BadRowException("expected prompt + completions (the steps) + labels (one per step), TRL's stepwise-supervision format");
            var steps = row.StringList("completions");
            var labels = row.StepLabels("labels");
            if (steps.Count == 0) throw new BadRowException("field \"completions\" has no steps");
            if (labels.Count != steps.Count) throw new BadRowException($"field \"labels\" has {labels.Count} labels for {steps.Count} steps");
            return [new StepwiseCompletion(row.Has("prompt") ? row.String("prompt", allowEmpty: true) : "", steps, labels)];
        });

    /// <summary>Plain texts from <c>text</c> rows (pre-training, PPO-ptx).</summary>
    public static LoadResult<TextRecord> LoadTexts(string path, FieldMap? fieldMap = null, bool skipInvalid = false) =>
        Load<TextRecord>(path, fieldMap, skipInvalid, (format, row) => format switch
        {
            DatasetFormat.Text => [new TextRecord(row.String("text"))],
            _ => throw WrongFormat(format, "texts", "text"),
        });

    private static LoadResult<T> Load<T>(string path, FieldMap? fieldMap, bool skipInvalid, Func<DatasetFormat?, RowFields, T[]> convert)
    {
        var map = fieldMap ?? FieldMap.None;
        var records = new List<T>();
        int skipped = 0;
        // hf://datasets/org/name/path: the Hugging Face cache's copy, downloaded first if need be.
        foreach (var raw in DatasetReader.Read(Hub.HubResolver.FromEnvironment().ResolveFile(path)))
        {
            string? error = raw.Error;
            if (error is null)
            {
                try
                {
                    var row = new RowFields(map.Apply(raw.Fields!), map);
                    records.AddRange(convert(DatasetFormats.Detect(row.Row), row));
                }
                catch (BadRowException ex) { error = ex.Message; }
            }
            if (error is null) continue;
            if (!skipInvalid) throw new RlhfException($"{raw.Where}: {error}");
            skipped++;
        }
        return new LoadResult<T>(records, skipped);
    }

    private static BadRowException WrongFormat(DatasetFormat? format, string wanted, string fields) =>
        new(format is null
            ? $"no known fields for {wanted}; expected {fields} ({RenameHint})"
            : $"a {format} row cannot be read as {wanted}; expected {fields} ({RenameHint})");

    /// <summary>Where a user renames columns: the stage recipes' <c>fields</c> section, and <c>rlhf eval --field</c>.</summary>
    const string RenameHint = "rename columns with --set fields.prompt_field=question in a stage command, or --field prompt=question in rlhf eval";

    private static Demonstration Conversation(RowFields row)
    {
        var messages = row.Messages("messages");
        if (!messages.Any(m => m.Role == "assistant")) throw new BadRowException("field \"messages\" has no assistant turn to learn from");
        return Demonstration.FromMessages(messages);
    }

    private static Preference Pair(DatasetFormat? format, RowFields row)
    {
        string chosen = row.String("chosen"), rejected = row.String("rejected");
        double? margin = row.OptionalNumber("margin");
        if (format == DatasetFormat.Preference) return new Preference(row.String("prompt", allowEmpty: true), chosen, rejected, margin);

        var c = HhDialogue.Split(chosen);
        var r = HhDialogue.Split(rejected);
        if (c is null && r is null) return new Preference("", chosen, rejected, margin);
        if (c is null || r is null)
            throw new BadRowException($"only {(c is null ? "rejected" : "chosen")} has a \"\\n\\nAssistant:\" turn; an implicit prompt needs both");
        // Usually both split at the same place. A response may itself contain an invented "\n\nHuman: …\n\nAssistant:"
        // turn (helpful-base test line 169); then the shorter prompt, shared by both, is the real one, which is what
        // the DPO reference code gets by cutting rejected at the length of chosen's prompt.
        string prompt = c.Value.Prompt.Length <= r.Value.Prompt.Length ? c.Value.Prompt : r.Value.Prompt;
        if (!chosen.StartsWith(prompt, StringComparison.Ordinal) || !rejected.StartsWith(prompt, StringComparison.Ordinal))
            throw new BadRowException("chosen and rejected have different prompts (their text up to the last \"\\n\\nAssistant:\" differs)");
        c = (prompt, chosen[prompt.Length..]);
        r = (prompt, rejected[prompt.Length..]);
        if (c.Value.Response.Length == 0) throw new BadRowException("chosen has an empty response after the last \"\\n\\nAssistant:\"");
        if (r.Value.Response.Length == 0) throw new BadRowException("rejected has an empty response after the last \"\\n\\nAssistant:\"");
        return new Preference(c.Value.Prompt, c.Value.Response, r.Value.Response, margin);
    }

    private static Ranking ToRanking(Preference p) => new(p.Prompt, [p.Chosen, p.Rejected]) { Margin = p.Margin };

    /// <summary>A preference row's two examples; the pair is also kept so a file of pairs can be put in TRL's order.</summary>
    private static LabeledCompletion[] Unpair(List<Preference> seen, Preference p)
    {
        seen.Add(p);
        return [new LabeledCompletion(p.Prompt, p.Chosen, true), new LabeledCompletion(p.Prompt, p.Rejected, false)];
    }

    private static Ranking Ranked(RowFields row)
    {
        string prompt = row.String("prompt", allowEmpty: true);
        var responses = row.StringList("responses");
        var ranking = row.IntList("ranking");
        if (responses.Count < 2) throw new BadRowException($"field \"responses\" has {responses.Count} response(s); a ranking needs at least 2");
        if (ranking.Count != responses.Count)
            throw new BadRowException($"field \"ranking\" has {ranking.Count} entries for {responses.Count} responses");
        if (ranking.Order().Select((x, i) => x == i).Any(ok => !ok))
            throw new BadRowException($"field \"ranking\" [{string.Join(", ", ranking)}] is not a permutation of 0..{responses.Count - 1} (indices of responses, best first)");
        return new Ranking(prompt, ranking.Select(i => responses[i]).ToList());
    }
}
