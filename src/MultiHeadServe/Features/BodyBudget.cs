using Microsoft.Extensions.Options;

namespace MultiHeadServe.Features;

/// <summary>
/// Bounds the memory that the bodies of requests in flight hold together, with what parsing them costs
/// (Serve:MaxBodyBytesInFlight). A body is held whole while its request runs, and a JSON body costs more again when
/// it is parsed: the parsed document keeps 12 bytes per token, and a token can be two bytes ("0,"), so a 16 MB array
/// of numbers becomes 100 to 250 MB of the parser's buffers. Without a bound, 24 such bodies at once (each within
/// Serve:MaxRequestBytes) ended 41 of 48 requests with OutOfMemoryException under a 2 GiB heap limit. The budget
/// counts a body's buffer as it grows (a JSON body 13 times: its bytes and its parse), before the buffer exists;
/// bodies up to <see cref="Uncounted"/> bytes are not counted, so ordinary requests never touch it.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public sealed class BodyBudget(IOptions<ServeOptions> options)
{
    /// <summary>Buffers up to this size are not counted: their total is bounded by the connections, not by what a client declares.</summary>
    public const int Uncounted = 64 * 1024;

    /// <summary>Bytes counted per byte of a JSON body: the body and the parser's 12 bytes per (at least two-byte) token, doubled as its buffer grows.</summary>
    public const int JsonFactor = 13;

    private readonly BytesInFlight _held = new();

    /// <summary>The bytes all requests' bodies may hold together.</summary>
    public long Total => options.Value.MaxBodyBytesInFlight;

    /// <summary>The bytes held now.</summary>
    public long Held => _held.Held;

    /// <summary>Counts <paramref name="bytes"/> more against the budget; <see cref="Release"/> gives them back.</summary>
    /// <exception cref="FeatureRequestException">429 with Retry-After when they do not fit now; 413 when they never can.</exception>
    public void Reserve(long bytes)
    {
        if (bytes <= 0)
        {
            return;
        }

        var total = Total;
        if (bytes > total)
        {
            throw new FeatureRequestException(StatusCodes.Status413PayloadTooLarge, "Payload too large", "body",
                $"This body needs {Megabytes(bytes)} to be read and parsed; the service holds at most {Megabytes(total)} of request bodies (Serve:MaxBodyBytesInFlight).");
        }

        if (!_held.TryTake(bytes, total, out var held))
        {
            throw new FeatureRequestException(StatusCodes.Status429TooManyRequests, "Too many requests", "body",
                $"The requests in flight hold {Megabytes(held)} of bodies and this one needs {Megabytes(bytes)} more, past the limit of " +
                $"{Megabytes(total)} (Serve:MaxBodyBytesInFlight); retry shortly.", TimeSpan.FromSeconds(1));
        }
    }

    public void Release(long bytes) => _held.Give(bytes);

    private static string Megabytes(long bytes) => BytesInFlight.Megabytes(bytes);
}
