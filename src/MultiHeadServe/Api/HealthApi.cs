using Microsoft.AspNetCore.Http.HttpResults;
using MultiHeadServe.Features;
using MultiHeadServe.Models;

namespace MultiHeadServe.Api;

/// <summary>/healthz (the process is alive) and /readyz (every model loaded and warm, the feature store reachable).</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/healthz", () => TypedResults.Ok(new Liveness("ok")))
            .WithTags("Health").WithName("Liveness").WithSummary("The process is up.");
        routes.MapGet("/readyz", Readiness)
            .WithTags("Health").WithName("Readiness").WithSummary("Models loaded and warm; feature store reachable.");
        return routes;
    }

    internal static async Task<Results<Ok<ReadinessReport>, JsonHttpResult<ReadinessReport>>> Readiness(
        ModelRegistry registry, FeatureStoreHealth store, CancellationToken cancellationToken)
    {
        var models = registry.All.OrderBy(m => m.Name, StringComparer.Ordinal)
            .Select(m => new ModelReadiness(m.Name, m.Version, Loaded: true, m.Warm, m.Session.ExecutionProvider))
            .ToList();
        var storeReport = await store.CheckAsync(cancellationToken);
        var ready = registry.Loaded && models.All(m => m.Warm) && storeReport.Reachable;
        var report = new ReadinessReport(ready ? "ready" : "not ready", models, storeReport);
        return ready ? TypedResults.Ok(report) : TypedResults.Json(report, statusCode: StatusCodes.Status503ServiceUnavailable);
    }
}

public sealed record Liveness(string Status);

public sealed record ModelReadiness(string Name, int Version, bool Loaded, bool Warm, string ExecutionProvider);

public sealed record ReadinessReport(string Status, IReadOnlyList<ModelReadiness> Models, FeatureStoreReport FeatureStore);
