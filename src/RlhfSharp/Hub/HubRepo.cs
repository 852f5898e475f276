using System.Text.RegularExpressions;

namespace RlhfSharp.Hub;

/// <summary>The two kinds of Hub repository this library reads.</summary>
public enum HubRepoType
{
    /// <summary>A model repository (<c>/{org}/{name}</c>, cache folder <c>models--org--name</c>).</summary>
    Model,
    /// <summary>A dataset repository (<c>/datasets/{org}/{name}</c>, cache folder <c>datasets--org--name</c>).</summary>
    Dataset,
}

/// <summary>
/// A Hub repository at a revision: <c>org/name</c>, <c>org/name@revision</c> (a branch, tag or commit), or for data
/// files <c>hf://datasets/org/name[@revision]/path/in/repo</c>, the form huggingface_hub's <c>HfFileSystem</c> uses.
/// </summary>
public sealed partial record HubRepo(HubRepoType Type, string Id, string Revision)
{
    /// <summary>The revision used when none is given (huggingface_hub: <c>DEFAULT_REVISION</c>).</summary>
    public const string DefaultRevision = "main";

    // huggingface_hub utils/_validators.py (validate_repo_id): word characters, '-' and '.', at most 96, no "--" or "..".
    [GeneratedRegex(@"^[\w\-.]+/[\w\-.]+$")]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    /// <summary>The cache folder name: <c>models--org--name</c> (huggingface_hub <c>repo_folder_name</c>).</summary>
    public string FolderName => $"{(Type == HubRepoType.Model ? "models" : "datasets")}--{Id.Replace("/", "--")}";

    /// <summary>Whether <see cref="Revision"/> is a full commit hash (then the cache answers without asking the Hub).</summary>
    public bool RevisionIsCommit => CommitPattern().IsMatch(Revision);

    /// <summary>How a user would write it back: <c>org/name@rev</c>, or with <c>datasets/</c> in front.</summary>
    public override string ToString() =>
        (Type == HubRepoType.Dataset ? "datasets/" : "") + Id + (Revision == DefaultRevision ? "" : "@" + Revision);

    /// <summary>Reads <c>org/name[@revision]</c>; null when <paramref name="spec"/> does not have that shape.</summary>
    public static HubRepo? TryParse(string spec, HubRepoType type = HubRepoType.Model)
    {
        int at = spec.IndexOf('@');
        string id = at < 0 ? spec : spec[..at];
        string revision = at < 0 ? DefaultRevision : Uri.UnescapeDataString(spec[(at + 1)..]);
        if (!IsValidId(id) || revision.Length == 0) return null;
        return new HubRepo(type, id, revision);
    }

    /// <summary>The prefix of data files on the Hub.</summary>
    public const string UriPrefix = "hf://";

    /// <summary>Whether <paramref name="path"/> names a file on the Hub (<c>hf://…</c>).</summary>
    public static bool IsHubUri(string path) => path.StartsWith(UriPrefix, StringComparison.Ordinal);

    /// <summary>
    /// Splits <c>hf://datasets/org/name[@rev]/path</c> (or <c>hf://org/name[@rev]/path</c> for a model repository)
    /// into the repository and the file's path inside it.
    /// </summary>
    /// <exception cref="RlhfException">The URI does not have that shape.</exception>
    public static (HubRepo Repo, string File) ParseUri(string uri)
    {
        string rest = uri[UriPrefix.Length..];
        var type = HubRepoType.Model;
        if (rest.StartsWith("datasets/", StringComparison.Ordinal)) { type = HubRepoType.Dataset; rest = rest["datasets/".Length..]; }
        string[] parts = rest.Split('/', 3);
        if (parts.Length < 3 || parts[2].Length == 0 || TryParse(parts[0] + "/" + parts[1], type) is not { } repo)
            throw new RlhfException($"{uri}: a Hub file is written hf://datasets/org/name[@revision]/path/to/file (e.g. hf://datasets/Anthropic/hh-rlhf/helpful-base/train.jsonl.gz).");
        return (repo, parts[2]);
    }

    static bool IsValidId(string id) => id.Length <= 96 && IdPattern().IsMatch(id) && !id.Contains("--") && !id.Contains("..")
        && !id.Split('/').Any(p => p.StartsWith('.') || p.StartsWith('-') || p.EndsWith('.') || p.EndsWith('-'));
}
