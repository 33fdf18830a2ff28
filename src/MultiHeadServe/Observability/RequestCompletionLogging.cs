using System.Diagnostics;

namespace MultiHeadServe.Observability;

/// <summary>One completion line per request: method, path, status, model, heads, rows, fetch and inference milliseconds.</summary>
public sealed class RequestCompletionLogging(RequestDelegate next, ServeMetrics metrics, ILogger<RequestCompletionLogging> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var telemetry = new RequestTelemetry();
        context.Features.Set(telemetry);
        var start = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (telemetry.Model is not null)
            {
                var route = context.GetEndpoint()?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName ?? "unknown";
                metrics.RecordRequest(telemetry.Model, route, context.Response.StatusCode);
            }

            // Checked first: the heads join and the boxed arguments would otherwise cost every request, logged or not.
            if (logger.IsEnabled(LogLevel.Information))
            {
                logger.LogInformation(
                    "{Method} {Path} -> {Status} in {ElapsedMs:0.0} ms; model {Model}, heads {Heads}, rows {Rows}, fetch {FetchMs:0.00} ms, inference {InferenceMs:0.00} ms",
                    context.Request.Method, context.Request.Path.Value, context.Response.StatusCode, elapsed,
                    telemetry.Model ?? "-", telemetry.Heads is null ? "-" : string.Join(",", telemetry.Heads), telemetry.Rows,
                    telemetry.FetchMilliseconds, telemetry.InferenceMilliseconds);
            }
        }
    }
}
