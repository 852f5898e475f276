using System.Text;
using RlhfSharp.Checkpoints;
using RlhfSharp.Data;
using RlhfSharp.Hub;
using static TorchSharp.torch;

namespace RlhfSharp.Tests.Hub;

/// <summary>
/// Model and data resolution against a loopback mock Hub (<see cref="MockHub"/>): the cache layout huggingface_hub
/// reads and writes, resume, checksums, offline mode and the errors a user sees. Never the real Hub.
/// </summary>
public sealed class HubResolverTests : IAsyncLifetime
{
    readonly string tmp = Directory.CreateTempSubdirectory("rlhf-hub-").FullName;
    MockHub hub = null!;
    string Cache => Path.Combine(tmp, "hub");
    static string Gpt2Tiny => Path.Combine(AppContext.BaseDirectory, "fixtures", "hf", "gpt2_tiny");
    static readonly HubRepo Tiny = new(HubRepoType.Model, "org/tiny", "main");

    public async Task InitializeAsync() => hub = await MockHub.StartAsync();

    public async Task DisposeAsync()
    {
        await hub.DisposeAsync();
        Directory.Delete(tmp, recursive: true);
    }

    HubResolver Resolver(bool offline = false, string? token = null, int retries = 5) =>
        new(new HubSettings(hub.Endpoint, Cache, token, offline) { RetryDelay = TimeSpan.FromMilliseconds(10), MaxRetries = retries });

    string RepoDir => Path.Combine(Cache, "models--org--tiny");

    static byte[] Bytes(string file) => File.ReadAllBytes(Path.Combine(Gpt2Tiny, file));

    [Fact]
    public void A_model_is_downloaded_into_the_huggingface_hub_cache_layout()
    {
        string commit = hub.Add("org/tiny", Gpt2Tiny);
        string dir = Resolver().ResolveModel(Tiny);

        Assert.Equal(Path.Combine(RepoDir, "snapshots", commit), dir);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(RepoDir, "refs", "main"))); // no newline, as huggingface_hub writes it
        // Snapshot files are relative links to blobs named by the ETag: sha256 for LFS, git blob sha1 otherwise.
        string weightsEtag = MockHub.Sha256(Bytes("model.safetensors")), configEtag = MockHub.GitSha1(Bytes("config.json"));
        Assert.Equal($"../../blobs/{weightsEtag}", new FileInfo(Path.Combine(dir, "model.safetensors")).LinkTarget);
        Assert.Equal($"../../blobs/{configEtag}", new FileInfo(Path.Combine(dir, "config.json")).LinkTarget);
        Assert.Equal(Bytes("model.safetensors"), File.ReadAllBytes(Path.Combine(RepoDir, "blobs", weightsEtag)));
        Assert.Equal(Bytes("config.json"), File.ReadAllBytes(Path.Combine(RepoDir, "blobs", configEtag)));
        // Only what loading needs: expected.json is in the repository but not a model file.
        Assert.False(File.Exists(Path.Combine(dir, "expected.json")));
        // Optional files the repository lacks are remembered as huggingface_hub does, in .no_exist/{commit}/.
        Assert.True(File.Exists(Path.Combine(RepoDir, ".no_exist", commit, "tokenizer.json")));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoDir, "blobs"), "*.incomplete"));

        // Second time: the cache answers, the Hub is not asked.
        int asked = hub.Requests.Count;
        Assert.Equal(dir, Resolver().ResolveModel(Tiny));
        Assert.Equal(asked, hub.Requests.Count);
    }

    [Fact]
    public void Sharded_safetensors_are_fetched_through_their_index_and_load_as_the_original()
    {
        string sharded = Path.Combine(tmp, "sharded");
        using (var model = HuggingFaceCheckpoint.LoadCausalLM(Gpt2Tiny)) HuggingFaceCheckpoint.Save(model, sharded, maxShardBytes: 40_000);
        var index = Path.Combine(sharded, ModelFiles.WeightsIndex);
        var shards = ModelFiles.Shards(index);
        Assert.True(shards.Count >= 2, $"the fixture should shard, got {shards.Count}");
        File.WriteAllBytes(Path.Combine(sharded, "pytorch_model.bin"), new byte[1000]); // another format, never fetched
        hub.Add("org/tiny", sharded);

        string dir = Resolver().ResolveModel(Tiny);
        foreach (var shard in shards) Assert.Equal(File.ReadAllBytes(Path.Combine(sharded, shard)), File.ReadAllBytes(Path.Combine(dir, shard)));
        Assert.False(File.Exists(Path.Combine(dir, "pytorch_model.bin")));
        Assert.DoesNotContain(hub.Requests, r => r.Path.EndsWith("pytorch_model.bin"));
        using var expected = HuggingFaceCheckpoint.LoadCausalLM(Gpt2Tiny);
        using var loaded = HuggingFaceCheckpoint.LoadCausalLM(dir);
        var want = expected.state_dict();
        foreach (var (name, t) in loaded.state_dict()) Assert.True(t.eq(want[name]).all().item<bool>(), name);
    }

    [Fact]
    public void A_connection_cut_mid_file_is_resumed_with_a_range_request()
    {
        hub.Add("org/tiny", Gpt2Tiny);
        hub.DropAfterBytes = 50_000;
        hub.DropTimes = 1;
        string dir = Resolver().ResolveModel(Tiny);
        Assert.Equal(Bytes("model.safetensors"), File.ReadAllBytes(Path.Combine(dir, "model.safetensors")));
        Assert.Contains(hub.Requests, r => r.Path.StartsWith("/cdn/") && r.Range == "bytes=50000-");
    }

    [Fact]
    public void A_download_killed_mid_file_resumes_in_the_next_run_and_leaves_no_snapshot_before()
    {
        string commit = hub.Add("org/tiny", Gpt2Tiny);
        hub.DropAfterBytes = 50_000;
        hub.DropTimes = 1;
        var e = Assert.Throws<RlhfException>(() => Resolver(retries: 0).ResolveModel(Tiny));
        Assert.Contains("rerun to resume", e.Message);
        string partial = Path.Combine(RepoDir, "blobs", MockHub.Sha256(Bytes("model.safetensors")) + ".incomplete");
        Assert.Equal(50_000, new FileInfo(partial).Length);
        Assert.False(File.Exists(Path.Combine(RepoDir, "snapshots", commit, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(RepoDir, "refs", "main")));

        string dir = Resolver(retries: 0).ResolveModel(Tiny);
        Assert.Contains(hub.Requests, r => r.Path.StartsWith("/cdn/") && r.Range == "bytes=50000-");
        Assert.Equal(Bytes("model.safetensors"), File.ReadAllBytes(Path.Combine(dir, "model.safetensors")));
        Assert.False(File.Exists(partial));
    }

    [Theory]
    [InlineData("model.safetensors", "sha256")] // LFS: checked against X-Linked-Etag
    [InlineData("config.json", "git sha1")]      // in git: checked against the ETag, git's blob id
    public void A_corrupted_download_is_detected_and_never_enters_the_cache(string file, string digest)
    {
        string commit = hub.Add("org/tiny", Gpt2Tiny);
        hub.Corrupt.Add(file);
        var e = Assert.Throws<RlhfException>(() => Resolver().ResolveModel(Tiny));
        Assert.Contains($"{file} arrived corrupted", e.Message);
        Assert.Contains(digest, e.Message);
        string etag = file == "config.json" ? MockHub.GitSha1(Bytes(file)) : MockHub.Sha256(Bytes(file));
        Assert.False(File.Exists(Path.Combine(RepoDir, "blobs", etag)));
        Assert.False(File.Exists(Path.Combine(RepoDir, "blobs", etag + ".incomplete")));
        Assert.False(File.Exists(Path.Combine(RepoDir, "snapshots", commit, file)));
        Assert.False(File.Exists(Path.Combine(RepoDir, "refs", "main")));

        hub.Corrupt.Clear(); // a good copy on the next run
        Assert.Equal(Bytes(file), File.ReadAllBytes(Path.Combine(Resolver().ResolveModel(Tiny), file)));
    }

    [Fact]
    public void Offline_mode_never_touches_the_network()
    {
        hub.Add("org/tiny", Gpt2Tiny);
        var e = Assert.Throws<RlhfException>(() => Resolver(offline: true).ResolveModel(Tiny));
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Contains("not in the Hugging Face cache", e.Message);
        var d = Assert.Throws<RlhfException>(() => Resolver(offline: true).ResolveFile("hf://datasets/org/data/train.jsonl"));
        Assert.Contains("HF_HUB_OFFLINE", d.Message);
        Assert.Empty(hub.Requests);

        string online = Resolver().ResolveModel(Tiny);
        int asked = hub.Requests.Count;
        Assert.Equal(online, Resolver(offline: true).ResolveModel(Tiny));
        Assert.Equal(asked, hub.Requests.Count);
    }

    [Fact]
    public void A_gated_repository_asks_for_HF_TOKEN_and_opens_with_it()
    {
        hub.Add("org/tiny", Gpt2Tiny, token: "hf_secret");
        var none = Assert.Throws<RlhfException>(() => Resolver().ResolveModel(Tiny));
        Assert.Contains("401", none.Message);
        Assert.Contains("HF_TOKEN", none.Message);
        Assert.Contains("gated", none.Message);
        var wrong = Assert.Throws<RlhfException>(() => Resolver(token: "hf_other").ResolveModel(Tiny));
        Assert.Contains("403", wrong.Message);
        Assert.Contains("HF_TOKEN", wrong.Message);

        string dir = Resolver(token: "hf_secret").ResolveModel(Tiny);
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.Contains(hub.Requests, r => r.Authorization == "Bearer hf_secret");
    }

    [Fact]
    public void Unknown_repositories_files_and_revisions_are_clear_404s()
    {
        hub.Add("org/tiny", Gpt2Tiny);
        hub.Add("org/data", new Dictionary<string, byte[]> { ["train.jsonl"] = "{}\n"u8.ToArray() }, dataset: true);
        Assert.Contains("no such model repository", Assert.Throws<RlhfException>(() => Resolver().ResolveModel(Tiny with { Id = "org/nothing" })).Message);
        Assert.Contains("revision 'v9' not found", Assert.Throws<RlhfException>(() => Resolver().ResolveModel(Tiny with { Revision = "v9" })).Message);
        Assert.Contains("missing.jsonl: no such file", Assert.Throws<RlhfException>(() => Resolver().ResolveFile("hf://datasets/org/data/missing.jsonl")).Message);
        Assert.Contains("no such dataset repository", Assert.Throws<RlhfException>(() => Resolver().ResolveFile("hf://datasets/org/none/train.jsonl")).Message);
    }

    [Fact]
    public void No_network_and_not_cached_says_so()
    {
        var settings = new HubSettings("http://127.0.0.1:9", Cache, null, false) { RetryDelay = TimeSpan.FromMilliseconds(10) };
        var e = Assert.Throws<RlhfException>(() => new HubResolver(settings).ResolveModel(Tiny));
        Assert.Contains("cannot reach the Hub at http://127.0.0.1:9", e.Message);
        Assert.Contains("not in the Hugging Face cache", e.Message);
    }

    [Fact]
    public void A_full_disk_during_download_leaves_no_snapshot_and_says_so()
    {
        // /dev/full fails every write with ENOSPC: a download whose partial file lands there meets a full disk.
        Assert.True(File.Exists("/dev/full"), "this Linux test needs /dev/full");
        string commit = hub.Add("org/tiny", Gpt2Tiny);
        string blobs = Path.Combine(RepoDir, "blobs");
        Directory.CreateDirectory(blobs);
        File.CreateSymbolicLink(Path.Combine(blobs, MockHub.Sha256(Bytes("model.safetensors")) + ".incomplete"), "/dev/full");
        var e = Assert.Throws<RlhfException>(() => Resolver().ResolveModel(Tiny));
        Assert.Contains("disk is full", e.Message);
        Assert.Contains("model.safetensors", e.Message);
        Assert.False(File.Exists(Path.Combine(RepoDir, "snapshots", commit, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(blobs, MockHub.Sha256(Bytes("model.safetensors")))));
        Assert.False(File.Exists(Path.Combine(RepoDir, "refs", "main")));
    }

    [Fact]
    public void A_cache_laid_out_by_python_huggingface_hub_is_used_offline()
    {
        // Written by hand the way huggingface_hub's hf_hub_download leaves it (docs: "Understand caching"): blobs named by
        // ETag, refs/main holding the commit, snapshot entries as relative symlinks into blobs.
        string commit = "0123456789abcdef0123456789abcdef01234567";
        string repoDir = Path.Combine(Cache, "models--someone--gpt2-tiny");
        foreach (var (file, etag) in new[] { ("config.json", MockHub.GitSha1(Bytes("config.json"))), ("model.safetensors", MockHub.Sha256(Bytes("model.safetensors"))) })
        {
            Directory.CreateDirectory(Path.Combine(repoDir, "blobs"));
            File.WriteAllBytes(Path.Combine(repoDir, "blobs", etag), Bytes(file));
            Directory.CreateDirectory(Path.Combine(repoDir, "snapshots", commit));
            File.CreateSymbolicLink(Path.Combine(repoDir, "snapshots", commit, file), $"../../blobs/{etag}");
        }
        Directory.CreateDirectory(Path.Combine(repoDir, "refs"));
        File.WriteAllText(Path.Combine(repoDir, "refs", "main"), commit);

        var repo = new HubRepo(HubRepoType.Model, "someone/gpt2-tiny", "main");
        string dir = Resolver(offline: true).ResolveModel(repo);
        Assert.Equal(Path.Combine(repoDir, "snapshots", commit), dir);
        Assert.Equal(dir, Resolver(offline: true).ResolveModel(repo with { Revision = commit }));
        using var expected = HuggingFaceCheckpoint.LoadCausalLM(Gpt2Tiny);
        using var loaded = HuggingFaceCheckpoint.LoadCausalLM(dir);
        var want = expected.state_dict();
        foreach (var (name, t) in loaded.state_dict()) Assert.True(t.eq(want[name]).all().item<bool>(), name);
        Assert.Empty(hub.Requests);
    }

    [Fact]
    public void A_dataset_file_is_fetched_from_an_hf_uri_into_the_datasets_cache()
    {
        var rows = "{\"prompt\": \"Hi\", \"chosen\": \" hello\", \"rejected\": \" go away\"}\n{\"prompt\": \"Bye\", \"chosen\": \" bye!\", \"rejected\": \" no\"}\n";
        string commit = hub.Add("org/prefs", new Dictionary<string, byte[]> { ["data/train.jsonl"] = Encoding.UTF8.GetBytes(rows) }, dataset: true);
        string path = Resolver().ResolveFile("hf://datasets/org/prefs/data/train.jsonl");
        Assert.Equal(Path.Combine(Cache, "datasets--org--prefs", "snapshots", commit, "data", "train.jsonl"), path);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(Cache, "datasets--org--prefs", "refs", "main")));
        Assert.Contains(hub.Requests, r => r.Method == "HEAD" && r.Path == "/datasets/org/prefs/resolve/main/data/train.jsonl");
        var prefs = DatasetLoader.LoadPreferences(path).Records;
        Assert.Equal(2, prefs.Count);
        Assert.Equal(" go away", prefs[0].Rejected);
        // A pinned revision reads the same snapshot, offline.
        Assert.Equal(path, Resolver(offline: true).ResolveFile($"hf://datasets/org/prefs@{commit}/data/train.jsonl"));
    }

    [Theory]
    [InlineData("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "main")]
    [InlineData("org/name@v1.0", "org/name", "v1.0")]
    [InlineData("org/name@refs/pr/3", "org/name", "refs/pr/3")]
    public void Model_ids_parse_with_an_optional_revision(string spec, string id, string revision)
    {
        var repo = HubRepo.TryParse(spec)!;
        Assert.Equal(id, repo.Id);
        Assert.Equal(revision, repo.Revision);
        Assert.Equal("models--" + id.Replace("/", "--"), repo.FolderName);
    }

    [Theory]
    [InlineData("stories260k")]
    [InlineData("runs/x/sft/checkpoint")]
    [InlineData("org/name/")]
    [InlineData("org--x/name")]
    [InlineData("./org/name")]
    public void Paths_that_are_not_model_ids_are_not_taken_for_one(string spec) => Assert.Null(HubRepo.TryParse(spec));
}
