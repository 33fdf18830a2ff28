using Serilog;

namespace MultiHeadServe.Observability;

/// <summary>
/// What one model request did, filled in along the request path; the request log line and the request metrics
/// are written from it when the response is complete. Holds names and counts only: feature values are never logged.
/// </summary>
public sealed class RequestTelemetry
{
    public string? Model { get; set; }

    public IReadOnlyList<string>? Heads { get; set; }

    /// <summary>The head set as a metric label: the model's precomputed label for all its served heads, else the names joined by '+'.</summary>
    public string? HeadsLabel { get; set; }

    public int Rows { get; set; }

    public double FetchMilliseconds { get; set; }

    /// <summary>Feature fetches made for this request (one, whatever the number of heads and rows; none for inline or image features that were decoded instead).</summary>
    public int FeatureFetches { get; set; }

    public double QueueMilliseconds { get; set; }

    public double InferenceMilliseconds { get; set; }

    public int BatchRows { get; set; }

    internal void Enrich(IDiagnosticContext diagnostics)
    {
        diagnostics.Set(nameof(Model), Model);
        if (Heads is not null)
        {
            diagnostics.Set(nameof(Heads), Heads);
        }

        diagnostics.Set(nameof(Rows), Rows);
        diagnostics.Set("FetchMs", Math.Round(FetchMilliseconds, 3));
        diagnostics.Set("QueueMs", Math.Round(QueueMilliseconds, 3));
        diagnostics.Set("InferenceMs", Math.Round(InferenceMilliseconds, 3));
        diagnostics.Set(nameof(BatchRows), BatchRows);
    }
}
