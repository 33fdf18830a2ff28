namespace MultiHeadServe.Observability;

/// <summary>
/// What one request did, filled in along the request path and written as the single completion log line.
/// Holds names and counts only: feature values are never logged.
/// </summary>
public sealed class RequestTelemetry
{
    public string? Model { get; set; }

    public IReadOnlyList<string>? Heads { get; set; }

    public int Rows { get; set; }

    public double FetchMilliseconds { get; set; }

    public double InferenceMilliseconds { get; set; }
}
