using Microsoft.Data.Sqlite;

namespace RlhfSharp.Labeling;

/// <summary>
/// The label database's schema as an ordered list of migrations. SQLite's <c>user_version</c> records how many have
/// run; opening a database runs the missing ones, each in its own transaction, so an old file is upgraded in place
/// and a crash mid-upgrade leaves it at the last whole version. Append new migrations; never edit a shipped one.
/// </summary>
public static class SchemaMigrations
{
    /// <summary>Migration i takes the schema from version i to i + 1.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        // 1: prompts, their candidate responses, the items to label, annotators, assignments and labels.
        """
        CREATE TABLE prompts(
            id INTEGER PRIMARY KEY,
            text TEXT NOT NULL UNIQUE,
            created_ms INTEGER NOT NULL);
        CREATE TABLE responses(
            id INTEGER PRIMARY KEY,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            text TEXT NOT NULL,
            source TEXT NOT NULL);
        CREATE TABLE items(
            id INTEGER PRIMARY KEY,
            prompt_id INTEGER NOT NULL REFERENCES prompts(id),
            task TEXT NOT NULL CHECK (task IN ('rank', 'pair', 'rate', 'demo')),
            response_ids TEXT NOT NULL,
            labels_wanted INTEGER NOT NULL CHECK (labels_wanted >= 1),
            UNIQUE(prompt_id, task, response_ids));
        CREATE TABLE annotators(
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            token_sha256 TEXT NOT NULL UNIQUE,
            is_admin INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL);
        CREATE TABLE assignments(
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items(id),
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            created_ms INTEGER NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            UNIQUE(item_id, annotator_id));
        CREATE TABLE labels(
            id INTEGER PRIMARY KEY,
            assignment_id INTEGER NOT NULL UNIQUE REFERENCES assignments(id),
            annotator_id INTEGER NOT NULL REFERENCES annotators(id),
            item_id INTEGER NOT NULL REFERENCES items(id),
            idempotency_key TEXT NOT NULL,
            body TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            UNIQUE(annotator_id, idempotency_key));
        """,
        // 2: the lookups the assignment query and the dashboard make on every request.
        """
        CREATE INDEX assignments_by_annotator ON assignments(annotator_id, done);
        CREATE INDEX labels_by_item ON labels(item_id);
        CREATE INDEX responses_by_prompt ON responses(prompt_id);
        """,
        // 3: skipping an item (the annotator will not label it: its place is freed for others); the time, so undo finds the last action.
        """
        ALTER TABLE assignments ADD COLUMN skipped_ms INTEGER;
        """,
    ];

    /// <summary>The version a database has once every migration ran.</summary>
    public static int Latest => All.Count;

    /// <summary>The schema version of an open database (0 for a new file).</summary>
    public static int Version(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA user_version";
        return Convert.ToInt32(command.ExecuteScalar());
    }

    /// <summary>Runs the migrations <paramref name="connection"/>'s database lacks, up to <paramref name="target"/>.</summary>
    /// <exception cref="RlhfException">The database is newer than this program.</exception>
    public static void Apply(SqliteConnection connection, string path, int? target = null)
    {
        int to = target ?? Latest;
        int version = Version(connection);
        if (version > Latest)
            throw new RlhfException($"{path}: the label database has schema version {version}, newer than this rlhf knows ({Latest}); use a newer rlhf.");
        for (int v = version; v < to; v++)
        {
            using var tx = connection.BeginTransaction();
            using var command = connection.CreateCommand();
            command.Transaction = tx;
            // PRAGMA takes no parameters; v + 1 is our own integer.
            command.CommandText = All[v] + $"\nPRAGMA user_version = {v + 1};";
            command.ExecuteNonQuery();
            tx.Commit();
        }
    }
}
