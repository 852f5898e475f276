using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace RlhfSharp.Labeling;

/// <summary>The server's answer to one label submission.</summary>
/// <param name="Status">HTTP status: 201 stored, 200 a retry of a stored label, 4xx refused.</param>
public sealed record SubmitReply(int Status, long LabelId, bool Duplicate, long Labels, string? Error)
{
    public bool Acknowledged => Status is 200 or 201;
}

/// <summary>
/// The labelling API as a .NET client, for the simulated annotators and the tests: one annotator, one token.
/// </summary>
public sealed class LabelingClient(HttpClient http, string token)
{
    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    HttpRequestMessage Request(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    public async Task<Progress> MeAsync(CancellationToken cancel = default)
    {
        using var response = await http.SendAsync(Request(HttpMethod.Get, "/api/me"), cancel);
        await Ensure(response, cancel);
        return (await response.Content.ReadFromJsonAsync<Progress>(Json, cancel))!;
    }

    /// <summary>The next assignment (of <paramref name="task"/>, when given), or null when none is left.</summary>
    public async Task<Assignment?> NextAsync(string? task = null, CancellationToken cancel = default)
    {
        using var response = await http.SendAsync(Request(HttpMethod.Get, task is null ? "/api/next" : $"/api/next?task={task}"), cancel);
        if (response.StatusCode == HttpStatusCode.NoContent) return null;
        await Ensure(response, cancel);
        return await response.Content.ReadFromJsonAsync<Assignment>(Json, cancel);
    }

    /// <summary>Skips an open assignment: the item is not offered to this annotator again.</summary>
    public async Task SkipAsync(long assignmentId, CancellationToken cancel = default)
    {
        using var response = await http.SendAsync(Request(HttpMethod.Post, $"/api/assignments/{assignmentId}/skip"), cancel);
        await Ensure(response, cancel);
    }

    /// <summary>Takes back this annotator's last label or skip; null when there was nothing to undo.</summary>
    public async Task<UndoOutcome?> UndoAsync(CancellationToken cancel = default)
    {
        using var response = await http.SendAsync(Request(HttpMethod.Post, "/api/undo"), cancel);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await Ensure(response, cancel);
        return await response.Content.ReadFromJsonAsync<UndoOutcome>(Json, cancel);
    }

    /// <summary>Sends one label once. Network failures throw <see cref="HttpRequestException"/>; the caller retries with the same key.</summary>
    public async Task<SubmitReply> SubmitAsync(LabelSubmission label, string idempotencyKey, CancellationToken cancel = default)
    {
        var request = Request(HttpMethod.Post, "/api/labels");
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        request.Content = JsonContent.Create(label, options: Json);
        using var response = await http.SendAsync(request, cancel);
        string text = await response.Content.ReadAsStringAsync(cancel);
        int status = (int)response.StatusCode;
        JsonDocument body;
        // A proxy in front of the server may answer with a page of its own: keep its status, do not fail on its text.
        try { body = JsonDocument.Parse(text); }
        catch (JsonException) { return new SubmitReply(status is 200 or 201 ? 502 : status, 0, false, 0, text.Length > 200 ? text[..200] : text); }
        using var _ = body;
        var root = body.RootElement;
        return status is 200 or 201
            ? new SubmitReply(status, root.GetProperty("label_id").GetInt64(), root.GetProperty("duplicate").GetBoolean(), root.GetProperty("labels").GetInt64(), null)
            : new SubmitReply(status, 0, false, 0, root.TryGetProperty("error", out var e) ? e.GetString() : null);
    }

    /// <summary>
    /// Sends a label until the server answers (5xx and broken connections are retried with the same key, so a label
    /// is never counted twice), giving up after <paramref name="timeout"/>.
    /// </summary>
    public async Task<SubmitReply> SubmitWithRetryAsync(LabelSubmission label, string idempotencyKey, TimeSpan timeout, CancellationToken cancel = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                var reply = await SubmitAsync(label, idempotencyKey, cancel);
                if (reply.Status < 500) return reply;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException { InnerException: TimeoutException } or IOException && !cancel.IsCancellationRequested)
            {
                if (DateTime.UtcNow > deadline) throw;
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"label for assignment {label.AssignmentId} not acknowledged within {timeout}");
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(attempt, 5))), cancel);
        }
    }

    static async Task Ensure(HttpResponseMessage response, CancellationToken cancel)
    {
        if (response.IsSuccessStatusCode) return;
        string text = await response.Content.ReadAsStringAsync(cancel);
        throw new HttpRequestException($"{(int)response.StatusCode}: {text}", null, response.StatusCode);
    }
}
