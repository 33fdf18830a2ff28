using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Extensions.Options;
using MultiHeadServe.Features;

namespace MultiHeadServe.Api.Grpc;

/// <summary>
/// Counts a unary gRPC infer's message against the <see cref="BodyBudget"/> before gRPC reads it. The framework holds a
/// message whole, then its parsed form, then the service its tensor: about three times its size, for as long as the
/// call runs, and one HTTP/2 connection carries 100 calls at once. A hundred 16 MB messages at once (each within
/// Serve:MaxRequestBytes) took a 2 GiB service to <c>OutOfMemoryException</c> and broke its connection. The message's
/// length is read from its 5-byte prefix, left in place for gRPC; a message that does not fit now is answered
/// <c>UNAVAILABLE</c> (REST's 429), one that never can <c>RESOURCE_EXHAUSTED</c> (413), before any of it is held. A
/// compressed message counts as the largest it may become. Streamed requests are counted one by one as they are read.
/// </summary>
public sealed class GrpcMessageBudgetMiddleware(RequestDelegate next, BodyBudget budget, IOptions<ServeOptions> options)
{
    /// <summary>Bytes counted per byte of a message: the framework's buffer, the parsed message and the input tensor.</summary>
    public const int Factor = 3;

    private const string UnaryInfer = "/inference.GRPCInferenceService/ModelInfer";

    public async Task InvokeAsync(HttpContext context)
    {
        if (!HttpMethods.IsPost(context.Request.Method) || !context.Request.Path.Equals(UnaryInfer, StringComparison.Ordinal) ||
            !GrpcHosting.IsGrpc(context.Request))
        {
            await next(context);
            return;
        }

        var bytes = await MessageBytesAsync(context) * Factor;
        if (bytes <= BodyBudget.Uncounted)
        {
            await next(context);
            return;
        }

        try
        {
            budget.Reserve(bytes);
        }
        catch (FeatureRequestException ex)
        {
            // A trailers-only answer: the status a gRPC client reads, nothing of the message held.
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = ((int)GrpcStatuses.FromHttp(ex.Status)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers["grpc-message"] = Uri.EscapeDataString(ex.Message);
            return;
        }

        try
        {
            await next(context);
        }
        finally
        {
            budget.Release(bytes);
        }
    }

    /// <summary>The first message's length from its prefix (a compressed one: the largest it may be), without consuming it.</summary>
    private async Task<long> MessageBytesAsync(HttpContext context)
    {
        var reader = context.Request.BodyReader;
        var result = await reader.ReadAtLeastAsync(5, context.RequestAborted);
        var buffer = result.Buffer;
        try
        {
            if (buffer.Length < 5)
            {
                return 0; // not a message: gRPC says so
            }

            Span<byte> prefix = stackalloc byte[5];
            buffer.Slice(0, 5).CopyTo(prefix);
            var length = (long)BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]);
            return prefix[0] == 0 ? length : Math.Max(length, options.Value.MaxRequestBytes);
        }
        finally
        {
            // Nothing consumed or examined: gRPC reads the message from its start.
            reader.AdvanceTo(buffer.Start, buffer.Start);
        }
    }
}
