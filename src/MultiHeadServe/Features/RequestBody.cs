using System.Buffers;
using Microsoft.Extensions.DependencyInjection;

namespace MultiHeadServe.Features;

/// <summary>
/// Reads a request body into pooled memory, enforcing the size limit (and, for JSON, the content type). The one
/// place request bodies are read: JSON, raw images and multipart forms alike are held to Serve:MaxRequestBytes.
/// </summary>
internal static class RequestBody
{
    /// <exception cref="FeatureRequestException">415 for another content type, 413 past <paramref name="limit"/> bytes.</exception>
    public static Task<PooledBody> ReadJsonAsync(HttpContext context, long limit)
    {
        var contentType = context.Request.ContentType;
        if (!IsJson(contentType))
        {
            throw UnsupportedMediaType($"Send the body as application/json (got '{contentType ?? "none"}').");
        }

        return ReadAsync(context, limit, json: true);
    }

    private const int InitialBufferLimit = 256 * 1024;

    /// <summary>
    /// Reads the whole body, whatever its content type. Its buffer is counted against the <see cref="BodyBudget"/> as it
    /// grows past <see cref="BodyBudget.Uncounted"/> bytes, <see cref="BodyBudget.JsonFactor"/> times for a body that
    /// will be parsed as <paramref name="json"/>, until the body is disposed.
    /// </summary>
    /// <exception cref="FeatureRequestException">413 past <paramref name="limit"/> bytes; 429 when the bodies in flight hold the budget.</exception>
    public static async Task<PooledBody> ReadAsync(HttpContext context, long limit, bool json = false)
    {
        var request = context.Request;
        // The decompression middleware takes away the Content-Encoding it undoes (gzip, deflate, br); one left is not known.
        if (request.Headers.ContentEncoding is { Count: > 0 } encoding &&
            !(encoding.Count == 1 && string.Equals(encoding[0], "identity", StringComparison.OrdinalIgnoreCase)))
        {
            throw new FeatureRequestException(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "Content-Encoding",
                $"The body's Content-Encoding '{encoding}' is not one the service undoes: send the body as it is, or as gzip, deflate or br.");
        }

        if (IsJson(request.ContentType) && Charset(request.ContentType) is { } charset &&
            !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
        {
            // RFC 8259: JSON between systems is UTF-8. Reading a body declared otherwise as UTF-8 would misread it.
            throw UnsupportedMediaType($"JSON is read as UTF-8; this body declares charset '{charset}'. Send it as UTF-8.");
        }

        if (request.ContentLength > limit)
        {
            throw TooLarge(limit);
        }

        // Chunked bodies have no Content-Length: stop reading as soon as the limit is passed. A declared length is
        // believed only up to 256 KiB before bytes arrive: a client that announces 16 MiB and sends nothing holds
        // no 16 MiB buffer; larger bodies grow the buffer as they come.
        var size = request.ContentLength is long length ? (int)Math.Min(Math.Min(length, limit), InitialBufferLimit) + 1 : 64 * 1024;
        var memory = new BodyMemory(context.RequestServices.GetRequiredService<BodyBudget>(), json ? BodyBudget.JsonFactor : 1);
        memory.Cover(Math.Max(size, 1024));
        byte[] buffer;
        try
        {
            buffer = ArrayPool<byte>.Shared.Rent(Math.Max(size, 1024));
        }
        catch
        {
            memory.Dispose();
            throw;
        }

        var count = 0;
        try
        {
            while (true)
            {
                if (count == buffer.Length)
                {
                    memory.Cover(buffer.Length * 2L);
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, count).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await request.Body.ReadAsync(buffer.AsMemory(count), context.RequestAborted);
                if (read == 0)
                {
                    break;
                }

                count += read;
                if (count > limit)
                {
                    throw TooLarge(limit);
                }
            }

            return new PooledBody(buffer, count, memory);
        }
        catch (BadHttpRequestException ex)
        {
            // The server refused the framing (a malformed chunk, a body shorter than its Content-Length) or the client
            // sent too slowly for the minimum data rate (408): the client's mistake, with the server's status.
            ArrayPool<byte>.Shared.Return(buffer);
            memory.Dispose();
            throw new FeatureRequestException(ex.StatusCode, ex.StatusCode == StatusCodes.Status408RequestTimeout ? "Request body too slow" : "Invalid request body",
                "$", $"The request body could not be read: {ex.Message}");
        }
        catch (Exception ex) when (ex is InvalidDataException || (ex is InvalidOperationException && ex.TargetSite?.DeclaringType?.Namespace == "System.IO.Compression"))
        {
            // A compressed body (Content-Encoding gzip, deflate or br) whose data is not what it says: the gzip and deflate
            // readers say so with InvalidDataException, Brotli's with an InvalidOperationException of its own.
            ArrayPool<byte>.Shared.Return(buffer);
            memory.Dispose();
            throw new FeatureRequestException(StatusCodes.Status400BadRequest, "Invalid request body", "Content-Encoding", $"The body could not be decompressed: {ex.Message}");
        }
        catch (IOException ex) when (!context.RequestAborted.IsCancellationRequested)
        {
            // Framing the server could not parse that it reports as an I/O error rather than a bad request (a chunk size
            // too large for its counter: "Bad chunk size data"). The connection is still there: the client's mistake.
            ArrayPool<byte>.Shared.Return(buffer);
            memory.Dispose();
            throw new FeatureRequestException(StatusCodes.Status400BadRequest, "Invalid request body", "$", $"The request body could not be read: {ex.Message}");
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            memory.Dispose();
            throw;
        }
    }

    /// <summary>application/json or a structured +json type.</summary>
    public static bool IsJson(string? contentType)
    {
        var mediaType = MediaType(contentType);
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The media type of a Content-Type header, without parameters (empty when there is none); read in place, as every request asks.</summary>
    public static ReadOnlySpan<char> MediaType(string? contentType)
    {
        var value = contentType.AsSpan();
        var parameters = value.IndexOf(';');
        return (parameters < 0 ? value : value[..parameters]).Trim();
    }

    /// <summary>The charset parameter of a Content-Type header (unquoted), or null when it names none.</summary>
    public static string? Charset(string? contentType)
    {
        var value = contentType.AsSpan();
        var start = value.IndexOf(';');
        while (start >= 0)
        {
            value = value[(start + 1)..];
            var end = value.IndexOf(';');
            var parameter = (end < 0 ? value : value[..end]).Trim();
            var equals = parameter.IndexOf('=');
            if (equals > 0 && parameter[..equals].Trim().Equals("charset", StringComparison.OrdinalIgnoreCase))
            {
                return parameter[(equals + 1)..].Trim().Trim('"').ToString();
            }

            start = end;
        }

        return null;
    }

    /// <summary>True when the Content-Type's media type is <paramref name="mediaType"/> (case-insensitive).</summary>
    public static bool IsMediaType(string? contentType, string mediaType) => MediaType(contentType).Equals(mediaType, StringComparison.OrdinalIgnoreCase);

    public static FeatureRequestException UnsupportedMediaType(string detail) =>
        new(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "Content-Type", detail);

    private static FeatureRequestException TooLarge(long limit) =>
        new(StatusCodes.Status413PayloadTooLarge, "Payload too large", "body", $"The body is larger than the limit of {limit} bytes (Serve:MaxRequestBytes).");
}

/// <summary>A request body in a pooled buffer; returns it to the pool and its memory to the budget once (dispose is idempotent).</summary>
internal sealed class PooledBody(byte[] buffer, int count, BodyMemory memory) : IDisposable
{
    private byte[]? _buffer = buffer;

    public ReadOnlyMemory<byte> Memory => _buffer.AsMemory(0, count);

    /// <summary>Counts the parse of <paramref name="jsonBytes"/> of this body as JSON (a body read as raw bytes whose head is JSON).</summary>
    /// <exception cref="FeatureRequestException">429 when the bodies in flight hold the budget.</exception>
    public void CountJsonParse(int jsonBytes)
    {
        if (jsonBytes > BodyBudget.Uncounted)
        {
            memory.Add((long)jsonBytes * (BodyBudget.JsonFactor - 1));
        }
    }

    public void Dispose()
    {
        var returned = Interlocked.Exchange(ref _buffer, null);
        if (returned is not null)
        {
            ArrayPool<byte>.Shared.Return(returned);
            memory.Dispose();
        }
    }
}

/// <summary>What one body has counted against the <see cref="BodyBudget"/>: its buffer's size times its factor, past the uncounted size.</summary>
internal sealed class BodyMemory(BodyBudget budget, int factor) : IDisposable
{
    private long _counted;

    /// <summary>Counts a buffer of <paramref name="bufferBytes"/> (what was counted for a smaller one is part of it).</summary>
    public void Cover(long bufferBytes)
    {
        if (bufferBytes > BodyBudget.Uncounted)
        {
            Add((bufferBytes * factor) - _counted);
        }
    }

    /// <summary>Counts <paramref name="bytes"/> more.</summary>
    /// <exception cref="FeatureRequestException">429 when they do not fit now, 413 when they never can.</exception>
    public void Add(long bytes)
    {
        if (bytes > 0)
        {
            budget.Reserve(bytes);
            _counted += bytes;
        }
    }

    public void Dispose()
    {
        budget.Release(_counted);
        _counted = 0;
    }
}
