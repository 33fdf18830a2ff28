using System.Diagnostics;

namespace MultiHeadServe.Observability;

/// <summary>
/// Gives every model request a <see cref="RequestTelemetry"/> for the path to fill in, and records the request
/// metrics when the response is complete. Health, readiness and scrape requests pass straight through.
/// </summary>
public sealed class RequestTelemetryMiddleware(RequestDelegate next, ServeMetrics metrics)
{
    /// <summary>The label of a model name the repository does not serve: a client's names never become labels.</summary>
    public const string UnknownModel = "(unknown)";

    public async Task InvokeAsync(HttpContext context)
    {
        if (context.Request.RouteValues["model"] is null)
        {
            await next(context);
            return;
        }

        var telemetry = new RequestTelemetry();
        context.Features.Set(telemetry);
        var start = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            var route = context.GetEndpoint()?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName;
            if (route is not null)
            {
                metrics.RecordRequest(telemetry, telemetry.Model ?? UnknownModel, route, context.Response.StatusCode,
                    Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
        }
    }
}
