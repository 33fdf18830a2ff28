using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Hashing;
using MultiHeadServe.Models;

namespace MultiHeadServe.Api;

/// <summary>
/// The OpenAPI document as written, kept until the served models change. Swashbuckle builds the document anew for
/// every request (every filter, the recorded examples, the serialisation: about 200 ms of CPU with the demo models),
/// though it only changes when the registry does or when the request names another server. So the first answer for
/// a scheme, host and path base is kept with the registry's generation, and later requests for the same get its
/// bytes, with an entity tag that lets a browser revalidate without downloading it again. At most
/// <see cref="MaxEntries"/> servers are kept (the Host header is the client's to choose). Thread-safe.
/// </summary>
/// <param name="registry">Whose change count says when a kept document is stale.</param>
/// <param name="memory">Gives back what building a document (rare, and as wasteful as a load) left.</param>
public sealed class OpenApiDocumentCache(ModelRegistry registry, ProcessMemory memory)
{
    /// <summary>How many (scheme, host, path base, document) answers are kept; beyond it the cache starts again.</summary>
    public const int MaxEntries = 8;

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private long _hits;
    private long _misses;

    /// <summary>Answers served from memory.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Answers Swashbuckle built.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>
    /// Serves a GET for an OpenAPI document from memory, or lets <paramref name="next"/> (Swashbuckle) write it and keeps
    /// a 200. Anything else passes through.
    /// </summary>
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var request = context.Request;
        if (!HttpMethods.IsGet(request.Method) || !IsDocument(request.Path))
        {
            await next(context);
            return;
        }

        // Read before the document is built: a change while it is built leaves an entry that is already stale.
        var generation = registry.Generation;
        var key = string.Join('\n', request.Scheme, request.Host.Value, request.PathBase.Value, request.Path.Value);
        if (_entries.TryGetValue(key, out var entry) && entry.Generation == generation)
        {
            Interlocked.Increment(ref _hits);
            await WriteAsync(context, entry);
            return;
        }

        Interlocked.Increment(ref _misses);
        var response = context.Response;
        var body = response.Body;
        using var buffer = new MemoryStream();
        response.Body = buffer;
        try
        {
            await next(context);
        }
        finally
        {
            response.Body = body;
        }

        if (response.StatusCode != StatusCodes.Status200OK)
        {
            buffer.Position = 0;
            await buffer.CopyToAsync(body, context.RequestAborted);
            return;
        }

        var bytes = buffer.ToArray();
        entry = new Entry(
            generation, bytes, response.ContentType ?? "application/json;charset=utf-8", response.Headers.CacheControl.ToString(),
            // Weak: the same tag stands for the compressed answers the explorer's branch makes of these bytes.
            "W/\"" + XxHash3.HashToUInt64(bytes).ToString("x16", CultureInfo.InvariantCulture) + "\"");
        if (_entries.Count >= MaxEntries && !_entries.ContainsKey(key))
        {
            _entries.Clear();
        }

        _entries[key] = entry;
        // Building it ran every model and serialised every example: far more garbage than the bytes kept.
        memory.ReturnSoon();

        await WriteAsync(context, entry);
    }

    private static bool IsDocument(PathString path) =>
        path.StartsWithSegments("/swagger", out var rest) && rest.Value is { } tail &&
        (tail.EndsWith("/swagger.json", StringComparison.Ordinal) || tail.EndsWith("/swagger.yaml", StringComparison.Ordinal) ||
         tail.EndsWith("/swagger.yml", StringComparison.Ordinal));

    private static Task WriteAsync(HttpContext context, Entry entry)
    {
        var response = context.Response;
        response.Headers.ETag = entry.ETag;
        if (entry.CacheControl.Length > 0)
        {
            response.Headers.CacheControl = entry.CacheControl;
        }

        // Weak comparison (RFC 9110, 13.1.2): the opaque tag, with or without W/.
        var opaque = entry.ETag[2..];
        if (context.Request.Headers.IfNoneMatch.Any(tags => tags is not null && (tags.Contains(opaque, StringComparison.Ordinal) || tags.Trim() == "*")))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = entry.ContentType;
        return response.Body.WriteAsync(entry.Bytes, context.RequestAborted).AsTask();
    }

    private sealed record Entry(long Generation, byte[] Bytes, string ContentType, string CacheControl, string ETag);
}
