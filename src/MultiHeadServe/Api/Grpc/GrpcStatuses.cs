using Grpc.Core;

namespace MultiHeadServe.Api.Grpc;

/// <summary>
/// The gRPC status for each HTTP status the REST API answers the same mistake with, so a client sees one rule on
/// both wires: 400 and 415 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 404 NOT_FOUND, 413 RESOURCE_EXHAUSTED, 429 and
/// 503 UNAVAILABLE (retry later), anything else INTERNAL.
/// </summary>
internal static class GrpcStatuses
{
    /// <summary>The trailer naming the request field at fault, as REST's error names it.</summary>
    public const string FieldTrailer = "field";

    public static StatusCode FromHttp(int status) => status switch
    {
        StatusCodes.Status400BadRequest or StatusCodes.Status415UnsupportedMediaType => StatusCode.InvalidArgument,
        StatusCodes.Status401Unauthorized => StatusCode.Unauthenticated,
        StatusCodes.Status403Forbidden => StatusCode.PermissionDenied,
        StatusCodes.Status404NotFound => StatusCode.NotFound,
        StatusCodes.Status413PayloadTooLarge => StatusCode.ResourceExhausted,
        StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable => StatusCode.Unavailable,
        499 => StatusCode.Cancelled,
        _ => StatusCode.Internal,
    };

    public static RpcException Exception(int httpStatus, string message, string? field)
    {
        var trailers = new Metadata();
        if (!string.IsNullOrEmpty(field))
        {
            trailers.Add(FieldTrailer, field);
        }

        return new RpcException(new Status(FromHttp(httpStatus), message), trailers);
    }
}
