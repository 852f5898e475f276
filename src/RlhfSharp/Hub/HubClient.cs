using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace RlhfSharp.Hub;

/// <summary>What a HEAD on a file's resolve URL says (huggingface_hub <c>HfFileMetadata</c>).</summary>
/// <param name="Commit">The commit the revision resolved to (<c>X-Repo-Commit</c>).</param>
/// <param name="Etag">The blob's name and checksum: <c>X-Linked-Etag</c> (sha256 of an LFS file) or <c>ETag</c> (git blob sha1), unquoted.</param>
/// <param name="Size">Bytes (<c>X-Linked-Size</c>, else <c>Content-Length</c>).</param>
/// <param name="Location">Where to GET the content: the redirect target (a CDN for LFS files) or the resolve URL.</param>
public sealed record HubFileMetadata(string Commit, string Etag, long Size, Uri Location);

/// <summary>
/// The few Hub calls model and data resolution need, over <see cref="HttpClient"/>. No maintained .NET client of the
/// Hub covers its cache layout, resumable downloads and checksums, so this follows huggingface_hub's
/// <c>file_download.py</c> (get_hf_file_metadata, http_get) and <c>hf_api.py</c> (repo_info) directly.
/// Every failure becomes an <see cref="RlhfException"/> that says what to do.
/// </summary>
public sealed class HubClient : IDisposable
{
    readonly HttpClient http;
    readonly HubSettings settings;
    readonly Uri endpoint;

    /// <summary>A client for <paramref name="settings"/>' endpoint and token.</summary>
    public HubClient(HubSettings settings)
    {
        if (settings.Offline) throw new InvalidOperationException("HF_HUB_OFFLINE is set: no Hub client may be created.");
        this.settings = settings;
        endpoint = new Uri(settings.Endpoint + "/");
        // Redirects are followed by hand: a HEAD follows only relative redirects, as huggingface_hub does,
        // so the LFS headers of the Hub's reply are read before the CDN's; the token is never sent to another host.
        http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None, ConnectTimeout = settings.Timeout })
        { Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("RlhfSharp", typeof(HubClient).Assembly.GetName().Version?.ToString(3) ?? "0"));
    }

    /// <summary>The resolve URL of a file (huggingface_hub <c>hf_hub_url</c>): /{repo}/resolve/{rev}/{file}, datasets under /datasets/.</summary>
    public Uri ResolveUrl(HubRepo repo, string revision, string file) =>
        new(endpoint, $"{(repo.Type == HubRepoType.Dataset ? "datasets/" : "")}{repo.Id}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}");

    /// <summary>
    /// The commit a revision points to and the files in it (GET /api/{models|datasets}/{repo}/revision/{rev}, as
    /// <c>snapshot_download</c> asks <c>repo_info</c>).
    /// </summary>
    public (string Commit, IReadOnlyList<string> Files) RepoInfo(HubRepo repo)
    {
        var url = new Uri(endpoint, $"api/{(repo.Type == HubRepoType.Dataset ? "datasets" : "models")}/{repo.Id}/revision/{Uri.EscapeDataString(repo.Revision)}");
        using var response = Send(HttpMethod.Get, url, repo, null);
        JsonNode? json;
        try { json = JsonNode.Parse(response.Content.ReadAsStringAsync().GetAwaiter().GetResult()); }
        catch (System.Text.Json.JsonException) { json = null; }
        string? sha = json?["sha"]?.GetValue<string>();
        if (sha is null || json?["siblings"] is not JsonArray siblings)
            throw new RlhfException($"{url}: the Hub's answer has no \"sha\" and \"siblings\": is HF_ENDPOINT ({settings.Endpoint}) a Hugging Face Hub?");
        return (sha, siblings.Select(s => s?["rfilename"]?.GetValue<string>()).OfType<string>().ToList());
    }

    /// <summary>
    /// HEAD on the file's resolve URL, following only same-host redirects (a renamed repository) and stopping at
    /// the CDN one. Null when the file does not exist and <paramref name="optional"/> is set.
    /// </summary>
    public HubFileMetadata? Metadata(HubRepo repo, string revision, string file, bool optional = false)
    {
        var url = ResolveUrl(repo, revision, file);
        using var response = Send(HttpMethod.Head, url, repo, file, optional);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        string? commit = Header(response, "X-Repo-Commit");
        string? etag = Header(response, "X-Linked-Etag") ?? response.Headers.ETag?.Tag ?? Header(response, "ETag");
        long? size = long.TryParse(Header(response, "X-Linked-Size"), out long linked) ? linked : response.Content.Headers.ContentLength;
        if (commit is null || etag is null || size is null)
            throw new RlhfException($"{url}: the answer lacks X-Repo-Commit, ETag or a size: a proxy between here and {settings.Endpoint} may strip them (huggingface_hub needs them too).");
        var requested = response.RequestMessage!.RequestUri!;
        var location = response.Headers.Location is { } l ? new Uri(requested, l.IsAbsoluteUri && l.Scheme != Uri.UriSchemeFile ? l.AbsoluteUri : l.OriginalString) : requested;
        return new HubFileMetadata(commit, NormalizeEtag(etag), size.Value, location);
    }

    /// <summary>
    /// Downloads <paramref name="url"/> into <paramref name="partial"/>, starting after the bytes already there
    /// (HTTP Range), resuming after a dropped connection up to <see cref="HubSettings.MaxRetries"/> times with backoff
    /// (huggingface_hub <c>http_get</c>). <paramref name="progress"/> gets the bytes on disk so far.
    /// </summary>
    public void Download(Uri url, HubRepo repo, string file, string partial, long size, Action<long> progress)
    {
        for (int attempt = 0; ; attempt++)
        {
            long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            progress(have);
            if (have == size) return;
            if (have > size) { File.Delete(partial); have = 0; }
            try
            {
                var headers = new List<(string, string)>();
                if (have > 0) headers.Add(("Range", $"bytes={have}-"));
                using var response = Send(HttpMethod.Get, url, repo, file, extraHeaders: headers, followRedirects: true, transfer: true);
                if (have > 0 && response.StatusCode != HttpStatusCode.PartialContent) { have = 0; } // the server ignored Range: start over
                using var source = response.Content.ReadAsStream();
                using var target = new FileStream(partial, have > 0 ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
                var buffer = new byte[1 << 16];
                long done = have;
                int n;
                while ((n = ReadWithTimeout(source, buffer)) > 0)
                {
                    target.Write(buffer, 0, n);
                    done += n;
                    progress(done);
                }
                target.Flush(flushToDisk: true);
                if (done == size) return;
                if (done > size) throw new RlhfException($"{url}: the Hub sent {done} bytes for {file}, {size} expected.");
                throw new IOException($"connection closed after {done} of {size} bytes");
            }
            catch (IOException e) when (IsDiskFull(e)) { throw DiskFull(repo, file, partial, size, e); }
            // A transfer cut off (the connection dropped or stalled) is resumed from what reached the disk.
            catch (Exception e) when (e is IOException or HttpRequestException or TimeoutException or TaskCanceledException && attempt < settings.MaxRetries)
            {
                Wait(attempt);
            }
            catch (Exception e) when (e is IOException or HttpRequestException or TimeoutException or TaskCanceledException)
            {
                throw new RlhfException($"{repo}: downloading {file} failed after {settings.MaxRetries + 1} attempts ({e.Message}); rerun to resume from the {new FileInfo(partial) switch { { Exists: true } f => f.Length, _ => 0 }} bytes kept in {partial}.");
            }
        }
    }

    int ReadWithTimeout(Stream source, byte[] buffer)
    {
        var read = source.ReadAsync(buffer).AsTask();
        if (Task.WaitAny([read], settings.Timeout) < 0) throw new TimeoutException($"no data for {settings.Timeout.TotalSeconds:0} s");
        return read.GetAwaiter().GetResult();
    }

    /// <summary>
    /// One request with huggingface_hub's retry policy (<c>http_backoff</c>): timeouts, 429 and 5xx are retried with
    /// exponential backoff; a refused connection is not (no network: the caller says the file is not cached). Non-success
    /// statuses become <see cref="RlhfException"/>s, except 404 of an <paramref name="optional"/> file.
    /// </summary>
    HttpResponseMessage Send(HttpMethod method, Uri url, HubRepo repo, string? file, bool optional = false,
        List<(string, string)>? extraHeaders = null, bool followRedirects = false, bool transfer = false)
    {
        for (int attempt = 0; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                response = SendFollowing(method, url, extraHeaders, followRedirects);
            }
            catch (Exception e) when (IsTimeout(e) && attempt < settings.MaxRetries) { Wait(attempt); continue; }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or TimeoutException && !transfer)
            {
                throw new RlhfException($"{repo}: cannot reach the Hub at {settings.Endpoint} ({Describe(e)}) and {(file is null ? "the repository" : file)} is not in the Hugging Face cache ({settings.CacheDir}). Connect, or copy the model there, or set HF_ENDPOINT to a mirror.");
            }
            int status = (int)response.StatusCode;
            if (status is 429 or 500 or 502 or 503 or 504 && attempt < settings.MaxRetries) { response.Dispose(); Wait(attempt, response.Headers.RetryAfter?.Delta); continue; }
            // A 3xx left unfollowed is the CDN redirect of an LFS file: its headers are the metadata.
            if (response.IsSuccessStatusCode || status is >= 300 and < 400 || (status == 404 && optional)) return response;
            using (response) throw Refused(response, repo, file, url);
        }
    }

    HttpResponseMessage SendFollowing(HttpMethod method, Uri url, List<(string, string)>? extraHeaders, bool followRedirects)
    {
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, url);
            // Identity encoding: a gzipped body would not match the blob's size or checksum.
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (settings.Token is { } token && url.Host == endpoint.Host && url.Port == endpoint.Port)
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            foreach (var (k, v) in extraHeaders ?? []) request.Headers.TryAddWithoutValidation(k, v);
            using var timeout = new CancellationTokenSource(settings.Timeout);
            var response = http.Send(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            int status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is { } location && hop < 10)
            {
                // huggingface_hub's follow_relative_redirects: a relative Location (a renamed repository) is followed,
                // an absolute one (the CDN of an LFS file) only when fetching content.
                // On Unix .NET parses "/path" as an absolute file: URI; such a Location is relative for HTTP.
                bool relative = !location.IsAbsoluteUri || location.Scheme == Uri.UriSchemeFile;
                if (followRedirects || relative)
                {
                    response.Dispose();
                    url = relative ? new Uri(url, location.OriginalString) : location;
                    continue;
                }
            }
            return response;
        }
    }

    RlhfException Refused(HttpResponseMessage response, HubRepo repo, string? file, Uri url)
    {
        // The Hub names the cause in X-Error-Code (huggingface_hub utils/_http.py, hf_raise_for_status).
        string? code = Header(response, "X-Error-Code");
        string page = $"{settings.Endpoint}/{(repo.Type == HubRepoType.Dataset ? "datasets/" : "")}{repo.Id}";
        string what = file is null ? repo.ToString() : $"{repo}: {file}";
        return (int)response.StatusCode switch
        {
            401 or 403 when code == "GatedRepo" || (int)response.StatusCode == 403 =>
                new($"{what}: the Hub refused access ({(int)response.StatusCode}): {repo.Id} is gated. Accept its terms at {page}, then set HF_TOKEN to an access token of that account{(settings.Token is null ? " (none is set)" : " (the one set is not allowed)")}."),
            401 => new($"{what}: the Hub refused access (401): {repo.Id} is private, gated or does not exist. Check the name; if it is yours or gated, set HF_TOKEN to an access token with read access{(settings.Token is null ? " (none is set)" : " (the one set was refused)")}."),
            404 when code == "RevisionNotFound" => new($"{repo}: revision '{repo.Revision}' not found (a branch, tag or commit of {page})."),
            404 when code == "EntryNotFound" || file is not null && code != "RepoNotFound" => new($"{what}: no such file in {repo.Id} at '{repo.Revision}' (404)."),
            404 => new($"{repo}: no such {(repo.Type == HubRepoType.Dataset ? "dataset" : "model")} repository on {settings.Endpoint} (404): check the name."),
            _ => new($"{what}: the Hub answered {(int)response.StatusCode} {response.ReasonPhrase} for {url}{(Header(response, "X-Error-Message") is { } m ? $": {m}" : "")}."),
        };
    }

    void Wait(int attempt, TimeSpan? asked = null)
    {
        var delay = asked ?? TimeSpan.FromTicks(Math.Min(settings.RetryDelay.Ticks << Math.Min(attempt, 20), settings.MaxRetryDelay.Ticks));
        Thread.Sleep(delay);
    }

    static bool IsTimeout(Exception e) => e is TaskCanceledException or TimeoutException || e is HttpRequestException { InnerException: TimeoutException };

    static string Describe(Exception e) => e is TaskCanceledException ? "timed out" : (e.InnerException?.Message ?? e.Message);

    static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var v) || response.Content.Headers.TryGetValues(name, out v) ? v.FirstOrDefault() : null;

    /// <summary>Strips the weak prefix and quotes of an ETag (huggingface_hub <c>_normalize_etag</c>).</summary>
    public static string NormalizeEtag(string etag)
    {
        string e = etag.Trim();
        if (e.StartsWith("W/", StringComparison.Ordinal)) e = e[2..];
        return e.Trim('"');
    }

    /// <summary>ENOSPC (28) on Unix, ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL on Windows.</summary>
    public static bool IsDiskFull(IOException e) => e.HResult is 28 or unchecked((int)0x80070070) or unchecked((int)0x80070027);

    RlhfException DiskFull(HubRepo repo, string file, string partial, long size, Exception e) =>
        new($"{repo}: the disk is full while downloading {file} ({size:N0} bytes) into {settings.CacheDir} ({e.Message}). Nothing was added to the snapshot; free space (or set HF_HUB_CACHE to a larger disk) and rerun: the {new FileInfo(partial) switch { { Exists: true } f => f.Length, _ => 0 }:N0} bytes in {partial} are resumed.");

    /// <summary>Closes the connections.</summary>
    public void Dispose() => http.Dispose();
}
