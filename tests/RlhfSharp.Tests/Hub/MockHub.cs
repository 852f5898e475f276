using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace RlhfSharp.Tests.Hub;

/// <summary>
/// A loopback stand-in for the Hugging Face Hub, started by the tests on 127.0.0.1 and a free port. It answers the
/// routes huggingface_hub uses, the way the real Hub does (as its file_download.py expects them):
/// <list type="bullet">
/// <item>GET /api/{models|datasets}/{org}/{name}/revision/{rev}: {"sha", "siblings": [{"rfilename"}]};</item>
/// <item>HEAD/GET /{org}/{name}/resolve/{rev}/{file} (datasets under /datasets/): X-Repo-Commit and, for a file kept in
/// git, ETag = git blob sha1 with the content; for an LFS file (*.safetensors) a 302 to /cdn/{sha256} with
/// X-Linked-Etag (sha256) and X-Linked-Size, the way the Hub sends LFS files to its CDN;</item>
/// <item>GET /cdn/{sha256}: the bytes, honouring Range (206).</item>
/// </list>
/// Errors carry X-Error-Code like the Hub's (RepoNotFound, EntryNotFound, RevisionNotFound, GatedRepo). Faults are
/// injected per test: drop the connection after N bytes, corrupt a file's bytes.
/// </summary>
public sealed class MockHub : IAsyncDisposable
{
    /// <summary>A repository: its commit and files.</summary>
    public sealed record Repo(string Commit, Dictionary<string, byte[]> Files, string? Token);

    readonly WebApplication app;
    readonly ConcurrentDictionary<string, Repo> repos = new();
    readonly ConcurrentDictionary<string, byte[]> blobs = new();

    /// <summary>Every request: method, path, Range header, Authorization header.</summary>
    public ConcurrentQueue<(string Method, string Path, string? Range, string? Authorization)> Requests { get; } = new();

    /// <summary>Drop the connection after this many bytes of the body, for as many GETs of /cdn as <see cref="DropTimes"/> says.</summary>
    public long DropAfterBytes { get; set; } = -1;

    /// <summary>How many more /cdn GETs are cut at <see cref="DropAfterBytes"/>.</summary>
    public int DropTimes { get; set; }

    /// <summary>Files (by path) served with one byte flipped in the middle.</summary>
    public HashSet<string> Corrupt { get; } = [];

    /// <summary>The endpoint to put in HF_ENDPOINT.</summary>
    public string Endpoint { get; private set; } = "";

    MockHub(WebApplication app) => this.app = app;

    /// <summary>Starts a mock Hub with no repositories.</summary>
    public static async Task<MockHub> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var hub = new MockHub(builder.Build());
        hub.app.Run(hub.Handle);
        await hub.app.StartAsync();
        hub.Endpoint = hub.app.Urls.First().TrimEnd('/');
        return hub;
    }

    /// <summary>Serves the files of <paramref name="folder"/> (recursively) as repository <paramref name="id"/>; returns its commit.</summary>
    public string Add(string id, string folder, bool dataset = false, string? token = null) =>
        Add(id, Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(folder, f).Replace('\\', '/'), File.ReadAllBytes), dataset, token);

    /// <summary>Serves <paramref name="files"/> as repository <paramref name="id"/> (gated behind <paramref name="token"/> if given); returns its commit.</summary>
    public string Add(string id, Dictionary<string, byte[]> files, bool dataset = false, string? token = null)
    {
        string commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(id + string.Join(",", files.Keys.Order()) + files.Count)));
        repos[(dataset ? "datasets/" : "") + id] = new Repo(commit, files, token);
        foreach (var bytes in files.Values) blobs[Sha256(bytes)] = bytes;
        return commit;
    }

    /// <summary>sha256 of the content: the X-Linked-Etag of an LFS file.</summary>
    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>git's blob id: the ETag of a file kept in git.</summary>
    public static string GitSha1(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

    static bool IsLfs(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal);

    async Task Handle(HttpContext ctx)
    {
        string path = Uri.UnescapeDataString(ctx.Request.Path.Value ?? "");
        Requests.Enqueue((ctx.Request.Method, path, ctx.Request.Headers.Range.FirstOrDefault(), ctx.Request.Headers.Authorization.FirstOrDefault()));
        var parts = (ctx.Request.Path.Value ?? "").Trim('/').Split('/').Select(Uri.UnescapeDataString).ToArray();
        if (parts is ["cdn", var blobId]) { await ServeBlob(ctx, blobId); return; }
        if (parts.Length >= 6 && parts[0] == "api" && parts[4] == "revision")
        {
            string key = (parts[1] == "datasets" ? "datasets/" : "") + parts[2] + "/" + parts[3];
            if (Find(ctx, key, string.Join('/', parts[5..])) is not { } repo) return;
            var siblings = new JsonArray(repo.Files.Keys.Order().Select(f => (JsonNode)new JsonObject { ["rfilename"] = f }).ToArray());
            await ctx.Response.WriteAsync(new JsonObject { ["id"] = key, ["sha"] = repo.Commit, ["siblings"] = siblings }.ToJsonString());
            return;
        }
        bool dataset = parts.Length > 0 && parts[0] == "datasets";
        var rest = dataset ? parts[1..] : parts;
        if (rest.Length >= 5 && rest[2] == "resolve")
        {
            string key = (dataset ? "datasets/" : "") + rest[0] + "/" + rest[1];
            if (Find(ctx, key, rest[3]) is not { } repo) return;
            string file = string.Join('/', rest[4..]);
            if (!repo.Files.TryGetValue(file, out var bytes)) { Error(ctx, 404, "EntryNotFound"); return; }
            bytes = Served(file, bytes);
            ctx.Response.Headers["X-Repo-Commit"] = repo.Commit;
            if (IsLfs(file))
            {
                string sha = Sha256(repo.Files[file]);
                blobs[sha] = bytes;
                ctx.Response.StatusCode = 302;
                ctx.Response.Headers.Location = $"{Endpoint}/cdn/{sha}";
                ctx.Response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
                ctx.Response.Headers["X-Linked-Size"] = bytes.Length.ToString();
                ctx.Response.Headers.ETag = $"\"{GitSha1(Encoding.ASCII.GetBytes("version https://git-lfs.github.com/spec/v1\noid sha256:" + sha))}\"";
                return;
            }
            ctx.Response.Headers.ETag = $"\"{GitSha1(repo.Files[file])}\"";
            ctx.Response.ContentLength = bytes.Length;
            if (ctx.Request.Method == "GET") await ctx.Response.Body.WriteAsync(bytes);
            return;
        }
        ctx.Response.StatusCode = 404;
    }

    byte[] Served(string file, byte[] bytes)
    {
        if (!Corrupt.Contains(file)) return bytes;
        var copy = (byte[])bytes.Clone();
        copy[copy.Length / 2] ^= 0xFF;
        return copy;
    }

    Repo? Find(HttpContext ctx, string key, string revision)
    {
        if (!repos.TryGetValue(key, out var repo)) { Error(ctx, 404, "RepoNotFound"); return null; }
        if (repo.Token is { } token)
        {
            string? auth = ctx.Request.Headers.Authorization.FirstOrDefault();
            if (auth is null) { Error(ctx, 401, "GatedRepo"); return null; }
            if (auth != "Bearer " + token) { Error(ctx, 403, "GatedRepo"); return null; }
        }
        if (revision != "main" && revision != repo.Commit) { Error(ctx, 404, "RevisionNotFound"); return null; }
        return repo;
    }

    static void Error(HttpContext ctx, int status, string code)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.Headers["X-Error-Code"] = code;
    }

    async Task ServeBlob(HttpContext ctx, string sha)
    {
        if (!blobs.TryGetValue(sha, out var bytes)) { ctx.Response.StatusCode = 404; return; }
        long start = 0;
        if (ctx.Request.Headers.Range.FirstOrDefault() is { } range && range.StartsWith("bytes=") && range.EndsWith('-'))
        {
            start = long.Parse(range["bytes=".Length..^1]);
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {start}-{bytes.Length - 1}/{bytes.Length}";
        }
        ctx.Response.ContentLength = bytes.Length - start;
        ctx.Response.Headers.ETag = $"\"{sha}\"";
        if (ctx.Request.Method != "GET") return;
        var body = bytes.AsMemory((int)start);
        if (DropAfterBytes >= 0 && DropTimes > 0 && body.Length > DropAfterBytes)
        {
            DropTimes--;
            await ctx.Response.Body.WriteAsync(body[..(int)DropAfterBytes]);
            await ctx.Response.Body.FlushAsync();
            await Task.Delay(300); // let the bytes reach the client before the reset, which would discard them
            ctx.Abort(); // the connection dies mid-file, as a killed download would
            return;
        }
        await ctx.Response.Body.WriteAsync(body);
    }

    /// <summary>Stops the server.</summary>
    public async ValueTask DisposeAsync() => await app.DisposeAsync();
}
