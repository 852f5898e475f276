using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace RlhfSharp.Labeling;

/// <summary>
/// The label database (SQLite through Microsoft.Data.Sqlite): prompts, candidate responses, items to label,
/// annotators, assignments and labels. WAL journal with <c>synchronous=FULL</c>, so a commit is on disk before
/// <see cref="Submit"/> returns and a reader never waits for a writer. Writes go through one lock: SQLite has one
/// writer at a time anyway, and queueing in-process beats spinning on SQLITE_BUSY.
/// </summary>
public sealed class LabelStore
{
    readonly string connectionString;
    readonly object writeGate = new();

    /// <summary>An open assignment older than this no longer holds its item's place (the annotator walked away).</summary>
    public TimeSpan AssignmentTimeout { get; init; } = TimeSpan.FromMinutes(30);

    public LabelLimits Limits { get; init; } = new();

    public string Path { get; }

    LabelStore(string path)
    {
        Path = path;
        connectionString = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true }.ToString();
    }

    /// <summary>Opens (creating if needed) the database at <paramref name="path"/> and brings its schema up to date.</summary>
    /// <param name="schemaVersion">Stop the migrations at this version (tests of the upgrade path).</param>
    public static LabelStore Open(string path, int? schemaVersion = null)
    {
        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir)) throw new RlhfException($"{path}: folder {dir} does not exist");
        var store = new LabelStore(path);
        try
        {
            using var c = store.Connect();
            Execute(c, "PRAGMA journal_mode = WAL");
            SchemaMigrations.Apply(c, path, schemaVersion);
        }
        catch (SqliteException e) { throw new RlhfException($"{path}: cannot open the label database ({e.Message})", e); }
        return store;
    }

    SqliteConnection Connect()
    {
        var c = new SqliteConnection(connectionString);
        c.Open();
        // FULL: the WAL is synced at every commit, so an acknowledged label survives a crash of the machine, not just of the process.
        Execute(c, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000");
        return c;
    }

    static void Execute(SqliteConnection c, string sql, SqliteTransaction? tx = null)
    {
        using var command = c.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    static SqliteCommand Command(SqliteConnection c, SqliteTransaction? tx, string sql, params (string Name, object? Value)[] args)
    {
        var command = c.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        foreach (var (name, value) in args) command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    static object? Scalar(SqliteConnection c, SqliteTransaction? tx, string sql, params (string, object?)[] args)
    {
        using var command = Command(c, tx, sql, args);
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    T Write<T>(Func<SqliteConnection, SqliteTransaction, T> body)
    {
        lock (writeGate)
        {
            using var c = Connect();
            using var tx = c.BeginTransaction(); // BEGIN IMMEDIATE: the write lock is taken up front
            var result = body(c, tx);
            tx.Commit();
            return result;
        }
    }

    /// <summary>The current schema version of the file.</summary>
    public int SchemaVersion
    {
        get { using var c = Connect(); return SchemaMigrations.Version(c); }
    }

    // ---- accounts ----

    /// <summary>Creates an annotator and returns their token (shown once: only its SHA-256 is stored).</summary>
    /// <exception cref="RlhfException">Bad or taken name.</exception>
    public string AddAnnotator(string name, bool admin = false)
    {
        name = name.Trim();
        if (name.Length == 0 || name.Length > Limits.MaxNameChars || name.Any(char.IsControl))
            throw new RlhfException($"annotator name must be 1..{Limits.MaxNameChars} printable characters, got \"{name}\"");
        string token = "rlhf_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_');
        return Write((c, tx) =>
        {
            if (Scalar(c, tx, "SELECT 1 FROM annotators WHERE name = $n", ("$n", name)) is not null)
                throw new RlhfException($"{Path}: an annotator called \"{name}\" already exists");
            using var insert = Command(c, tx, "INSERT INTO annotators(name, token_sha256, is_admin, created_ms) VALUES ($n, $t, $a, $now)",
                ("$n", name), ("$t", Hash(token)), ("$a", admin ? 1 : 0), ("$now", Now()));
            insert.ExecuteNonQuery();
            return token;
        });
    }

    static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>The annotator holding <paramref name="token"/>, or null.</summary>
    public Annotator? Authenticate(string token)
    {
        if (token.Length is 0 or > 200) return null;
        using var c = Connect();
        using var command = Command(c, null, "SELECT id, name, is_admin FROM annotators WHERE token_sha256 = $t", ("$t", Hash(token)));
        using var r = command.ExecuteReader();
        return r.Read() ? new Annotator(r.GetInt64(0), r.GetString(1), r.GetInt64(2) != 0) : null;
    }

    // ---- items ----

    /// <summary>
    /// Adds one item: <paramref name="prompt"/> with <paramref name="responses"/> (none for a demonstration from
    /// scratch, one as a draft to edit), to be labelled by <paramref name="labelsWanted"/> different annotators.
    /// Adding the same prompt, responses and task again adds nothing (imports can be re-run).
    /// </summary>
    /// <returns>True when a new item was added.</returns>
    public bool AddItem(string prompt, IReadOnlyList<string> responses, LabelTask task, int labelsWanted, string source)
    {
        string? problem = task switch
        {
            LabelTask.Rank when responses.Count < 2 || responses.Count > Limits.MaxResponses => $"a rank item needs 2..{Limits.MaxResponses} responses, got {responses.Count}",
            LabelTask.Pair when responses.Count != 2 => $"a pair item needs exactly 2 responses, got {responses.Count}",
            LabelTask.Rate when responses.Count < 1 || responses.Count > Limits.MaxResponses => $"a rate item needs 1..{Limits.MaxResponses} responses, got {responses.Count}",
            LabelTask.Demonstrate when responses.Count > 1 => $"a demo item takes at most one draft response, got {responses.Count}",
            _ => null,
        };
        if (labelsWanted < 1) problem ??= $"labels per item must be ≥ 1, got {labelsWanted}";
        if (prompt.Length > Limits.MaxImportedTextChars || responses.Any(r => r.Length > Limits.MaxImportedTextChars))
            problem ??= $"a prompt or response is over {Limits.MaxImportedTextChars} characters";
        if (responses.Any(r => r.Length == 0)) problem ??= "a response is empty";
        if (responses.Distinct().Count() != responses.Count) problem ??= "two responses are the same text";
        if (problem is not null) throw new RlhfException(problem);
        return Write((c, tx) =>
        {
            long promptId = PromptId(c, tx, prompt);
            var ids = responses.Select(text => ResponseId(c, tx, promptId, text, source)).ToList();
            using var insert = Command(c, tx, "INSERT OR IGNORE INTO items(prompt_id, task, response_ids, labels_wanted) VALUES ($p, $t, $r, $n)",
                ("$p", promptId), ("$t", task.Name()), ("$r", JsonSerializer.Serialize(ids)), ("$n", labelsWanted));
            return insert.ExecuteNonQuery() == 1;
        });
    }

    static long PromptId(SqliteConnection c, SqliteTransaction tx, string text)
    {
        if (Scalar(c, tx, "SELECT id FROM prompts WHERE text = $t", ("$t", text)) is long id) return id;
        return (long)Scalar(c, tx, "INSERT INTO prompts(text, created_ms) VALUES ($t, $now) RETURNING id", ("$t", text), ("$now", Now()))!;
    }

    static long ResponseId(SqliteConnection c, SqliteTransaction tx, long promptId, string text, string source)
    {
        if (Scalar(c, tx, "SELECT id FROM responses WHERE prompt_id = $p AND text = $t", ("$p", promptId), ("$t", text)) is long id) return id;
        return (long)Scalar(c, tx, "INSERT INTO responses(prompt_id, text, source) VALUES ($p, $t, $s) RETURNING id",
            ("$p", promptId), ("$t", text), ("$s", source))!;
    }

    /// <summary>Whether <paramref name="prompt"/> already has responses from <paramref name="source"/> (a model that generated them).</summary>
    public bool HasResponses(string prompt, string source)
    {
        using var c = Connect();
        return Scalar(c, null, "SELECT 1 FROM responses r JOIN prompts p ON p.id = r.prompt_id WHERE p.text = $t AND r.source = $s LIMIT 1",
            ("$t", prompt), ("$s", source)) is not null;
    }

    // ---- assignments and labels ----

    /// <summary>
    /// SQL: assignment <c>a</c> holds one of its item's places: it is labelled, or open, not skipped and younger than
    /// <see cref="AssignmentTimeout"/> (<c>$cutoff</c>). A skipped assignment gives its place to someone else at once.
    /// </summary>
    const string HoldsPlace = "(a.done = 1 OR (a.skipped_ms IS NULL AND a.created_ms > $cutoff))";

    /// <summary>
    /// The annotator's open assignment (of <paramref name="task"/>, when given), else a new one on the first item they
    /// have not seen that still lacks labels, else null. An item is offered to at most its wanted number of annotators
    /// at once; abandoned assignments free their place after <see cref="AssignmentTimeout"/>.
    /// </summary>
    public Assignment? Next(Annotator who, LabelTask? task = null) => Write((c, tx) =>
    {
        string? taskName = task?.Name();
        var open = Scalar(c, tx, """
            SELECT a.id FROM assignments a JOIN items i ON i.id = a.item_id
            WHERE a.annotator_id = $me AND a.done = 0 AND a.skipped_ms IS NULL AND ($task IS NULL OR i.task = $task) ORDER BY a.id LIMIT 1
            """, ("$me", who.Id), ("$task", taskName));
        if (open is long assignment) return Load(c, tx, assignment);
        var item = Scalar(c, tx, $$"""
            SELECT i.id FROM items i
            WHERE ($task IS NULL OR i.task = $task)
              AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.annotator_id = $me)
              AND (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id AND {{HoldsPlace}}) < i.labels_wanted
            ORDER BY i.id LIMIT 1
            """, ("$me", who.Id), ("$task", taskName), ("$cutoff", Now() - (long)AssignmentTimeout.TotalMilliseconds));
        if (item is not long itemId) return null;
        var id = (long)Scalar(c, tx, "INSERT INTO assignments(item_id, annotator_id, created_ms) VALUES ($i, $me, $now) RETURNING id",
            ("$i", itemId), ("$me", who.Id), ("$now", Now()))!;
        return Load(c, tx, id);
    });

    static Assignment Load(SqliteConnection c, SqliteTransaction tx, long assignmentId)
    {
        var (task, prompt, ids) = Item(c, tx, "SELECT i.task, p.text, i.response_ids FROM assignments a JOIN items i ON i.id = a.item_id JOIN prompts p ON p.id = i.prompt_id WHERE a.id = $id", assignmentId);
        var responses = Responses(c, tx, ids);
        // Each annotator sees the candidates in their own order, so the first slot's advantage averages out.
        if (task != "demo") new Random((int)(assignmentId * 2654435761 % int.MaxValue)).Shuffle(responses);
        return new Assignment(assignmentId, task, prompt, responses);
    }

    static (string Task, string Prompt, long[] Ids) Item(SqliteConnection c, SqliteTransaction? tx, string sql, long id)
    {
        using var command = Command(c, tx, sql, ("$id", id));
        using var r = command.ExecuteReader();
        r.Read();
        return (r.GetString(0), r.GetString(1), JsonSerializer.Deserialize<long[]>(r.GetString(2))!);
    }

    static CandidateResponse[] Responses(SqliteConnection c, SqliteTransaction? tx, long[] ids)
    {
        var texts = new Dictionary<long, string>();
        using var command = Command(c, tx, "SELECT id, text FROM responses WHERE id IN (SELECT value FROM json_each($ids))", ("$ids", JsonSerializer.Serialize(ids)));
        using var r = command.ExecuteReader();
        while (r.Read()) texts[r.GetInt64(0)] = r.GetString(1);
        return ids.Select(id => new CandidateResponse(id, texts[id])).ToArray();
    }

    /// <summary>
    /// Stores a label for one of the annotator's assignments, idempotently: a second call with the same
    /// <paramref name="idempotencyKey"/> for the same assignment returns the first label's id and stores nothing. The
    /// transaction has committed (and been synced) when this returns <see cref="SubmitStatus.Stored"/>.
    /// </summary>
    public SubmitOutcome Submit(Annotator who, string idempotencyKey, LabelSubmission label) => Write((c, tx) =>
    {
        using (var prior = Command(c, tx, "SELECT id, assignment_id, body FROM labels WHERE annotator_id = $me AND idempotency_key = $k", ("$me", who.Id), ("$k", idempotencyKey)))
        using (var r = prior.ExecuteReader())
        {
            // A retry repeats the body; the same key with another body is a client bug that would silently drop a label.
            if (r.Read())
                return r.GetInt64(1) != label.AssignmentId
                    ? new SubmitOutcome(SubmitStatus.KeyReused, Problem: "this Idempotency-Key was already used for another assignment; use a new key for each label")
                    : r.GetString(2) != label.ToStoredJson()
                    ? new SubmitOutcome(SubmitStatus.KeyReused, Problem: "this Idempotency-Key was already used with a different label body; a retry must send the same body, a new label a new key")
                    : new SubmitOutcome(SubmitStatus.Duplicate, r.GetInt64(0), CountLabels(c, tx, who.Id));
        }
        long itemId; bool done, skipped;
        using (var find = Command(c, tx, "SELECT item_id, done, skipped_ms IS NOT NULL FROM assignments WHERE id = $a AND annotator_id = $me", ("$a", label.AssignmentId), ("$me", who.Id)))
        using (var r = find.ExecuteReader())
        {
            if (!r.Read()) return new SubmitOutcome(SubmitStatus.NotFound, Problem: "no such assignment for you");
            itemId = r.GetInt64(0);
            done = r.GetInt64(1) != 0;
            skipped = r.GetInt64(2) != 0;
        }
        if (done) return new SubmitOutcome(SubmitStatus.Conflict, Problem: "this assignment already has a label");
        if (skipped) return new SubmitOutcome(SubmitStatus.Conflict, Problem: "you skipped this item; undo the skip to label it");
        var (task, _, ids) = Item(c, tx, "SELECT i.task, '', i.response_ids FROM items i WHERE i.id = $id", itemId);
        if (label.Problem(LabelTasks.Parse(task)!.Value, ids, Limits) is string problem) return new SubmitOutcome(SubmitStatus.Invalid, Problem: problem);
        var labelId = (long)Scalar(c, tx, """
            INSERT INTO labels(assignment_id, annotator_id, item_id, idempotency_key, body, created_ms)
            VALUES ($a, $me, $i, $k, $b, $now) RETURNING id
            """, ("$a", label.AssignmentId), ("$me", who.Id), ("$i", itemId), ("$k", idempotencyKey), ("$b", label.ToStoredJson()), ("$now", Now()))!;
        using (var close = Command(c, tx, "UPDATE assignments SET done = 1 WHERE id = $a", ("$a", label.AssignmentId))) close.ExecuteNonQuery();
        return new SubmitOutcome(SubmitStatus.Stored, labelId, CountLabels(c, tx, who.Id));
    });

    static long CountLabels(SqliteConnection c, SqliteTransaction? tx, long annotatorId) =>
        (long)Scalar(c, tx, "SELECT COUNT(*) FROM labels WHERE annotator_id = $me", ("$me", annotatorId))!;

    /// <summary>
    /// Labels given and items still open to <paramref name="who"/> (own open assignments included), per task too, and
    /// the items <paramref name="who"/> could label but whose places other annotators' open assignments hold now.
    /// </summary>
    public Progress Progress(Annotator who)
    {
        using var c = Connect();
        var byTask = LabelTasks.Names.ToDictionary(t => t, _ => 0L);
        long held = 0;
        // Items this annotator has neither labelled nor skipped: open to them when they hold an assignment or a place is free.
        using (var command = Command(c, null, $$"""
            SELECT i.task,
                   EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.annotator_id = $me)
                   OR (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id AND {{HoldsPlace}}) < i.labels_wanted,
                   (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id AND a.done = 1) < i.labels_wanted
            FROM items i
            WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.annotator_id = $me AND (a.done = 1 OR a.skipped_ms IS NOT NULL))
            """, ("$me", who.Id), ("$cutoff", Now() - (long)AssignmentTimeout.TotalMilliseconds)))
        using (var r = command.ExecuteReader())
            while (r.Read())
            {
                if (r.GetInt64(1) != 0) byTask[r.GetString(0)]++;
                else if (r.GetInt64(2) != 0) held++;
            }
        long skipped = (long)Scalar(c, null, "SELECT COUNT(*) FROM assignments WHERE annotator_id = $me AND skipped_ms IS NOT NULL", ("$me", who.Id))!;
        return new Progress(who.Name, who.IsAdmin, CountLabels(c, null, who.Id), byTask.Values.Sum()) { AvailableByTask = byTask, HeldByOthers = held, Skipped = skipped };
    }

    /// <summary>
    /// Skips one of the annotator's open assignments: they will not be offered the item again, and its place goes to
    /// another annotator at once. <see cref="SubmitStatus.Stored"/> means the skip was recorded; <see cref="Undo"/> takes it back.
    /// </summary>
    public SubmitOutcome Skip(Annotator who, long assignmentId) => Write((c, tx) =>
    {
        using (var find = Command(c, tx, "SELECT done, skipped_ms IS NOT NULL FROM assignments WHERE id = $a AND annotator_id = $me", ("$a", assignmentId), ("$me", who.Id)))
        using (var r = find.ExecuteReader())
        {
            if (!r.Read()) return new SubmitOutcome(SubmitStatus.NotFound, Problem: "no such assignment for you");
            if (r.GetInt64(0) != 0) return new SubmitOutcome(SubmitStatus.Conflict, Problem: "this assignment already has a label; undo it first");
            // Skipping twice (a retried request) is the same skip.
            if (r.GetInt64(1) != 0) return new SubmitOutcome(SubmitStatus.Duplicate, AnnotatorLabels: CountLabels(c, tx, who.Id));
        }
        using (var skip = Command(c, tx, "UPDATE assignments SET skipped_ms = $now WHERE id = $a", ("$a", assignmentId), ("$now", Now()))) skip.ExecuteNonQuery();
        return new SubmitOutcome(SubmitStatus.Stored, AnnotatorLabels: CountLabels(c, tx, who.Id));
    });

    /// <summary>
    /// Takes back the annotator's last action: their newest label is deleted, or their newest skip forgotten, whichever
    /// came last. The assignment is open again (holding a place anew) and comes back with what the label said, so the
    /// annotator can change it. Null when there is nothing to undo.
    /// </summary>
    public UndoOutcome? Undo(Annotator who) => Write((c, tx) =>
    {
        long? labelId = null, labelAssignment = null, labelMs = null;
        string? body = null;
        using (var last = Command(c, tx, "SELECT id, assignment_id, created_ms, body FROM labels WHERE annotator_id = $me ORDER BY id DESC LIMIT 1", ("$me", who.Id)))
        using (var r = last.ExecuteReader())
            if (r.Read()) (labelId, labelAssignment, labelMs, body) = (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetString(3));
        long? skipAssignment = null, skipMs = null;
        using (var last = Command(c, tx, "SELECT id, skipped_ms FROM assignments WHERE annotator_id = $me AND skipped_ms IS NOT NULL ORDER BY skipped_ms DESC, id DESC LIMIT 1", ("$me", who.Id)))
        using (var r = last.ExecuteReader())
            if (r.Read()) (skipAssignment, skipMs) = (r.GetInt64(0), r.GetInt64(1));
        if (labelId is null && skipAssignment is null) return null;
        bool undoSkip = skipAssignment is not null && (labelMs is null || skipMs >= labelMs);
        long assignment = undoSkip ? skipAssignment!.Value : labelAssignment!.Value;
        if (!undoSkip)
            using (var delete = Command(c, tx, "DELETE FROM labels WHERE id = $l", ("$l", labelId))) delete.ExecuteNonQuery();
        using (var reopen = Command(c, tx, "UPDATE assignments SET done = 0, skipped_ms = NULL, created_ms = $now WHERE id = $a", ("$a", assignment), ("$now", Now())))
            reopen.ExecuteNonQuery();
        return new UndoOutcome(undoSkip ? null : labelId, Load(c, tx, assignment), undoSkip ? null : LabelSubmission.FromStoredJson(body!) with { AssignmentId = assignment });
    });

    /// <summary>Every committed label with its item, prompt, responses and annotator, in label order.</summary>
    public IReadOnlyList<StoredLabel> Labels()
    {
        using var c = Connect();
        var rows = new List<(long Id, long Item, string Task, string Prompt, long[] Ids, long Who, string Name, string Body, long Ms, string Key)>();
        using (var command = Command(c, null, """
            SELECT l.id, l.item_id, i.task, p.text, i.response_ids, l.annotator_id, n.name, l.body, l.created_ms, l.idempotency_key
            FROM labels l JOIN items i ON i.id = l.item_id JOIN prompts p ON p.id = i.prompt_id JOIN annotators n ON n.id = l.annotator_id
            ORDER BY l.id
            """))
        using (var r = command.ExecuteReader())
            while (r.Read())
                rows.Add((r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetString(3), JsonSerializer.Deserialize<long[]>(r.GetString(4))!,
                    r.GetInt64(5), r.GetString(6), r.GetString(7), r.GetInt64(8), r.GetString(9)));
        var responses = new Dictionary<long, string>();
        using (var command = Command(c, null, "SELECT id, text FROM responses"))
        using (var r = command.ExecuteReader())
            while (r.Read()) responses[r.GetInt64(0)] = r.GetString(1);
        return rows.Select(x => new StoredLabel(x.Id, x.Item, LabelTasks.Parse(x.Task)!.Value, x.Prompt,
            x.Ids.Select(id => new CandidateResponse(id, responses[id])).ToList(), x.Who, x.Name,
            LabelSubmission.FromStoredJson(x.Body), x.Ms, x.Key)).ToList();
    }

    /// <summary>Items per task: how many there are, how many have all their labels, and the labels given.</summary>
    public IReadOnlyList<(string Task, long Items, long Complete, long Labels)> TaskCounts()
    {
        using var c = Connect();
        using var command = Command(c, null, """
            SELECT i.task, COUNT(*), SUM(COALESCE(l.n, 0) >= i.labels_wanted), SUM(COALESCE(l.n, 0))
            FROM items i LEFT JOIN (SELECT item_id, COUNT(*) AS n FROM labels GROUP BY item_id) l ON l.item_id = i.id
            GROUP BY i.task ORDER BY i.task
            """);
        using var r = command.ExecuteReader();
        var list = new List<(string, long, long, long)>();
        while (r.Read()) list.Add((r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3)));
        return list;
    }

    /// <summary>Every annotator (admins included) by id.</summary>
    public IReadOnlyList<Annotator> Annotators()
    {
        using var c = Connect();
        using var command = Command(c, null, "SELECT id, name, is_admin FROM annotators ORDER BY id");
        using var r = command.ExecuteReader();
        var list = new List<Annotator>();
        while (r.Read()) list.Add(new Annotator(r.GetInt64(0), r.GetString(1), r.GetInt64(2) != 0));
        return list;
    }

    /// <summary>Rows per table, for tests that check a refused request stored nothing.</summary>
    public IReadOnlyDictionary<string, long> RowCounts()
    {
        using var c = Connect();
        return new[] { "prompts", "responses", "items", "annotators", "assignments", "labels" }
            .ToDictionary(t => t, t => (long)Scalar(c, null, $"SELECT COUNT(*) FROM {t}")!);
    }
}
