using MultiHeadServe.Features.Store;

namespace MultiHeadServe.Observability;

public static class MetricsServices
{
    public static IServiceCollection AddServeMetrics(this IServiceCollection services)
    {
        services.AddMetrics();
        services.AddSingleton<ServeMetrics>();
        services.AddSingleton(sp => new PrometheusExporter(sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), [ServeMetrics.MeterName, FeatureStoreMetrics.MeterName]));
        return services;
    }

    /// <summary>GET /metrics in Prometheus' text format.</summary>
    public static IEndpointRouteBuilder MapMetricsApi(this IEndpointRouteBuilder routes)
    {
        // Created now, not on the first scrape: its listener only sees measurements made after it exists.
        routes.ServiceProvider.GetRequiredService<PrometheusExporter>();
        routes.MapGet("/metrics", (PrometheusExporter exporter) => Results.Text(exporter.Render(), "text/plain; version=0.0.4; charset=utf-8"))
            .WithTags("Health").WithName("Metrics").WithSummary("Prometheus metrics: requests, feature fetches, session runs, batch sizes, latencies, head losses.");
        return routes;
    }
}
