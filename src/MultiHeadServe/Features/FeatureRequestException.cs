namespace MultiHeadServe.Features;

/// <summary>
/// A request the middleware cannot turn into features: carries the HTTP status, the offending field
/// and, for an unavailable store, when to retry. Becomes an RFC 7807 problem.
/// </summary>
public sealed class FeatureRequestException : Exception
{
    public FeatureRequestException(int status, string title, string field, string detail, TimeSpan? retryAfter = null)
        : base(detail)
    {
        Status = status;
        Title = title;
        Field = field;
        RetryAfter = retryAfter;
    }

    public FeatureRequestException()
    {
    }

    public FeatureRequestException(string message)
        : base(message)
    {
    }

    public FeatureRequestException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public int Status { get; } = StatusCodes.Status400BadRequest;

    public string Title { get; } = "Invalid request";

    public string Field { get; } = "";

    public TimeSpan? RetryAfter { get; }

    public static FeatureRequestException BadField(string field, string detail) =>
        new(StatusCodes.Status400BadRequest, "Invalid request", field, detail);
}
