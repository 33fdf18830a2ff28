using MultiHeadServe.Features.Store;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace MultiHeadServe.Observability;

public static class MetricsServices
{
    /// <summary>
    /// OpenTelemetry metrics: the service's meters, ASP.NET Core's (<c>http.server.request.duration</c>), the .NET
    /// runtime's and the process's; exported for Prometheus on /metrics and, when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>
    /// (or <c>Metrics:OtlpEndpoint</c>) is set, pushed over OTLP.
    /// </summary>
    public static IServiceCollection AddServeMetrics(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<ServeMetrics>();
        var otlpEndpoint = configuration["Metrics:OtlpEndpoint"] ?? configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("multiheadserve"))
            .WithMetrics(metrics =>
            {
                metrics
                    .AddMeter(ServeMetrics.MeterName, FeatureStoreMetrics.MeterName)
                    // ASP.NET Core's own meters (http.server.request.duration with error.type, Kestrel's connections,
                    // exception handling), named directly: the instrumentation package would add the routing meter's
                    // per-request match counter and a middleware around the pipeline, on probes as on predictions.
                    .AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Diagnostics")
                    .AddRuntimeInstrumentation()
                    .AddProcessInstrumentation()
                    // A scrape sees every measurement made before it: tests and load generators read exact counts.
                    .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0);
                if (!string.IsNullOrEmpty(otlpEndpoint))
                {
                    metrics.AddOtlpExporter(otlp => otlp.Endpoint = new Uri(otlpEndpoint));
                }
            });
        return services;
    }

    /// <summary>GET /metrics in Prometheus' text format.</summary>
    public static IEndpointRouteBuilder MapMetricsApi(this IEndpointRouteBuilder routes)
    {
        // The exporter's own pipeline behind an ordinary route handler, so the endpoint is in the OpenAPI document too.
        var scrape = routes.CreateApplicationBuilder().UseOpenTelemetryPrometheusScrapingEndpoint(_ => true).Build();
        var metrics = routes.MapGet("/metrics", (HttpContext context, CancellationToken _) => scrape(context))
            .Produces(StatusCodes.Status200OK, contentType: "text/plain")
            .WithTags("Health").WithName("Metrics")
            .WithSummary("Prometheus metrics: requests, feature fetches, queue waits, session runs, batch rows, latencies, head losses, runtime and process.");
        if (!routes.ServiceProvider.GetRequiredService<Security.ApiKeys>().ProtectOperationalEndpoints)
        {
            metrics.ShortCircuit(); // scrapes skip the request log and the model middleware, as the probes do
        }

        return routes;
    }
}
