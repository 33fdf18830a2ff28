using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using MultiHeadServe.Api;

namespace MultiHeadServe.Security;

/// <summary>
/// The configured keys, read once at start-up, and the check of a request's key. Keys are compared as SHA-256
/// digests with a fixed-time comparison, so neither a key's content nor its length leaks through timing.
/// Thread-safe (immutable).
/// </summary>
public sealed class ApiKeys
{
    private readonly byte[][] _digests;

    public ApiKeys(IOptions<ApiKeyOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var keys = options.Value.ApiKeys.Where(k => !string.IsNullOrWhiteSpace(k)).Select(k => k.Trim()).ToList();
        if (options.Value.ApiKeyFile is { Length: > 0 } file)
        {
            if (!File.Exists(file))
            {
                throw new InvalidOperationException($"Security:ApiKeyFile: '{file}' does not exist.");
            }

            keys.AddRange(File.ReadAllLines(file).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));
        }

        _digests = [.. keys.Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k)))];
        ProtectOperationalEndpoints = options.Value.ProtectOperationalEndpoints;
    }

    /// <summary>Whether any key is configured (otherwise every endpoint is open).</summary>
    public bool Enabled => _digests.Length > 0;

    public bool ProtectOperationalEndpoints { get; }

    /// <summary>Whether <paramref name="key"/> is one of the configured keys.</summary>
    public bool Accepts(ReadOnlySpan<char> key)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        var length = Encoding.UTF8.GetByteCount(key);
        Span<byte> bytes = length <= 256 ? stackalloc byte[length] : new byte[length];
        Encoding.UTF8.GetBytes(key, bytes);
        SHA256.HashData(bytes, digest);
        var accepted = false;
        foreach (var candidate in _digests)
        {
            // Every key is compared, whichever matches: the time does not say which one did.
            accepted |= CryptographicOperations.FixedTimeEquals(candidate, digest);
        }

        return accepted;
    }
}

/// <summary>
/// Refuses requests without a valid key when keys are configured: 401 with <c>WWW-Authenticate: Bearer</c>, as
/// problem+json (on /v2 with the protocol's <c>error</c> too); gRPC calls get UNAUTHENTICATED.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, ApiKeys keys)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (!keys.Enabled || IsOpen(context.Request.Path) || HasValidKey(context.Request))
        {
            return next(context);
        }

        if (Api.Grpc.GrpcHosting.IsGrpc(context.Request))
        {
            // A gRPC client reads the outcome from grpc-status (a trailers-only response), the key from its metadata.
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = ((int)global::Grpc.Core.StatusCode.Unauthenticated).ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers["grpc-message"] = "This call needs an API key: send the metadata 'authorization: Bearer <key>' or 'x-api-key: <key>'.";
            return Task.CompletedTask;
        }

        // One problem for /v1 and /v2 alike (on /v2 it also carries the protocol's "error").
        return Problems.ApiKeyRequired(context).ExecuteAsync(context);
    }

    private bool IsOpen(PathString path) =>
        (!keys.ProtectOperationalEndpoints && Observability.LoggingSetup.IsOperational(path)) ||
        // The explorer's page and document describe the API and hold no data; its Authorize button sends the key.
        // gRPC reflection likewise describes the service only.
        path.StartsWithSegments("/swagger") || Api.Grpc.GrpcHosting.IsReflection(path);

    private bool HasValidKey(HttpRequest request)
    {
        if (request.Headers.TryGetValue("X-Api-Key", out var apiKey) && apiKey.Count == 1)
        {
            return keys.Accepts(apiKey[0]);
        }

        var authorization = request.Headers.Authorization;
        if (authorization.Count == 1 && authorization[0] is { } value && value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return keys.Accepts(value.AsSpan(7).Trim());
        }

        return false;
    }
}
