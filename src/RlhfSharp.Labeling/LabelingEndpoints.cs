using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace RlhfSharp.Labeling;

/// <summary>
/// The labelling API and pages. Every <c>/api</c> endpoint needs <c>Authorization: Bearer TOKEN</c> (no cookies, so
/// no cross-site request can act as an annotator); annotators reach only their own assignments; <c>/api/admin</c>
/// needs an admin token. The pages and script carry no data: they fetch it with the token the annotator typed in
/// and put user text on the page only as text nodes.
/// </summary>
public sealed class LabelingEndpoints(LabelStore store)
{
    static readonly JsonSerializerOptions Json = LabelSubmission.Json;

    /// <summary>Tight enough that neither inline script nor a script from elsewhere can run, even if escaping failed.</summary>
    const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    public void Map(WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            var h = context.Response.Headers;
            h.ContentSecurityPolicy = ContentSecurityPolicy;
            h.XContentTypeOptions = "nosniff";
            h.XFrameOptions = "DENY";
            h["Referrer-Policy"] = "no-referrer";
            h.CacheControl = "no-store";
            await next(context);
        });

        app.MapGet("/", () => Asset("index.html", "text/html; charset=utf-8"));
        app.MapGet("/admin", () => Asset("index.html", "text/html; charset=utf-8"));
        app.MapGet("/app.js", () => Asset("app.js", "text/javascript; charset=utf-8"));
        app.MapGet("/app.css", () => Asset("app.css", "text/css; charset=utf-8"));

        var api = app.MapGroup("/api");
        api.MapGet("/me", (HttpContext context) => Authorized(context, who => Results.Json(store.Progress(who), Json)));
        api.MapGet("/next", (HttpContext context, string? task) => Authorized(context, who =>
        {
            LabelTask? wanted = null;
            if (task is not null && (wanted = LabelTasks.Parse(task)) is null)
                return Error(400, $"unknown task \"{Truncate(task)}\"; use one of {string.Join(", ", LabelTasks.Names)}");
            return store.Next(who, wanted) is { } assignment ? Results.Json(assignment, Json) : Results.NoContent();
        }));
        api.MapPost("/labels", (Delegate)SubmitAsync);
        api.MapPost("/assignments/{id:long}/skip", (HttpContext context, long id) => Authorized(context, who =>
        {
            var outcome = store.Skip(who, id);
            return outcome.Status switch
            {
                SubmitStatus.Stored or SubmitStatus.Duplicate => Results.Json(new { Skipped = id, Labels = outcome.AnnotatorLabels }, Json),
                SubmitStatus.NotFound => Error(404, outcome.Problem!),
                _ => Error(409, outcome.Problem!),
            };
        }));
        // Undo is not idempotent (a retry would undo one more): the page sends it once per click and shows what came back.
        api.MapPost("/undo", (HttpContext context) => Authorized(context, who =>
            store.Undo(who) is { } undone
                ? Results.Json(new { undone.LabelId, undone.Assignment, undone.Previous, Labels = store.Progress(who).Labels }, Json)
                : Error(404, "nothing to undo: you have no label or skip yet")));
        api.MapGet("/admin/stats", (HttpContext context) => Authorized(context, who =>
            who.IsAdmin ? Results.Json(Dashboard.Build(store), Json) : Error(403, "the dashboard needs an admin token")));
        api.MapFallback(() => Error(404, "no such endpoint"));
    }

    async Task<IResult> SubmitAsync(HttpContext context)
    {
        if (Who(context) is not { } who) return Unauthorized();
        string? key = context.Request.Headers["Idempotency-Key"];
        if (string.IsNullOrEmpty(key) || key.Length > store.Limits.MaxIdempotencyKeyChars || !key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'))
            return Error(400, $"send an Idempotency-Key header of 1..{store.Limits.MaxIdempotencyKeyChars} characters (letters, digits, - _ . :), the same on every retry");
        if (!context.Request.HasJsonContentType()) return Error(415, "send the label as application/json");
        LabelSubmission? label;
        try { label = await JsonSerializer.DeserializeAsync<LabelSubmission>(context.Request.Body, Json, context.RequestAborted); }
        // The parser's own message names .NET types: say where, not what the server is made of.
        catch (JsonException e) { return Error(400, $"the body is not a valid label (JSON error at {e.Path ?? "$"}, line {e.LineNumber + 1}; fields: assignment_id, ranking, choice, ratings, demonstration)"); }
        if (label is null) return Error(400, "the body is not a label");
        var outcome = store.Submit(who, key, label);
        return outcome.Status switch
        {
            SubmitStatus.Stored => Results.Json(new { outcome.LabelId, Duplicate = false, Labels = outcome.AnnotatorLabels }, Json, statusCode: 201),
            SubmitStatus.Duplicate => Results.Json(new { outcome.LabelId, Duplicate = true, Labels = outcome.AnnotatorLabels }, Json, statusCode: 200),
            SubmitStatus.NotFound => Error(404, outcome.Problem!),
            SubmitStatus.Conflict => Error(409, outcome.Problem!),
            SubmitStatus.KeyReused => Error(422, outcome.Problem!),
            _ => Error(400, outcome.Problem!),
        };
    }

    Annotator? Who(HttpContext context)
    {
        string? header = context.Request.Headers.Authorization;
        const string scheme = "Bearer ";
        if (header is null || !header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return null;
        return store.Authenticate(header[scheme.Length..].Trim());
    }

    IResult Authorized(HttpContext context, Func<Annotator, IResult> body) => Who(context) is { } who ? body(who) : Unauthorized();

    static IResult Unauthorized() => Results.Json(new { Error = "send 'Authorization: Bearer TOKEN' with a token from 'rlhf label add-annotator'" }, Json, statusCode: 401);

    internal static IResult Error(int status, string message) => Results.Json(new { Error = message }, Json, statusCode: status);

    static string Truncate(string s, int max = 40) => s.Length <= max ? s : s[..max] + "…";

    static readonly Assembly Self = typeof(LabelingEndpoints).Assembly;

    static IResult Asset(string name, string contentType)
    {
        using var stream = Self.GetManifestResourceStream("wwwroot/" + name) ?? throw new InvalidOperationException($"missing embedded asset {name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Results.Bytes(copy.ToArray(), contentType);
    }
}
