using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using MultiHeadServe.Features;
using MultiHeadServe.Models;

namespace MultiHeadServe.Api;

/// <summary>
/// ASP.NET Core health checks. <c>/healthz</c>: the process is alive (no check runs). <c>/readyz</c>: every check
/// tagged "ready": the models (loaded and warm: unhealthy otherwise) and the feature store (degraded when it does
/// not answer: only the models that read it are then unready, which <c>/v2/models/{m}/ready</c> reports, while
/// image and inline models keep the pod in service).
/// <para>
/// gRPC clients and Kubernetes' gRPC probes read the same checks through gRPC's health-checking protocol
/// (<c>grpc.health.v1.Health</c>, on the gRPC port): the service names <c>""</c> (the whole server),
/// <c>readiness</c> and <c>inference.GRPCInferenceService</c> answer SERVING when <c>/readyz</c> answers 200 and
/// NOT_SERVING when it answers 503; <c>liveness</c> answers SERVING while the process is up, as <c>/healthz</c>; any
/// other name is NOT_FOUND. <c>Watch</c> streams a change when the checks next run (every 30 s).
/// </para>
/// </summary>
public static class HealthApi
{
    private const string ReadyTag = "ready";
    private const string LiveTag = "live";

    /// <summary>The gRPC health-checking service's path prefix: open like <c>/healthz</c> and <c>/readyz</c>.</summary>
    internal static bool IsGrpcHealth(PathString path) => path.StartsWithSegments("/grpc.health.v1.Health");

    public static IServiceCollection AddServeHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<ModelsHealthCheck>("models", HealthStatus.Unhealthy, [ReadyTag])
            .AddCheck<FeatureStoreHealthCheck>("feature-store", HealthStatus.Degraded, [ReadyTag])
            .AddCheck<ShutdownHealthCheck>("shutdown", HealthStatus.Unhealthy, [ReadyTag])
            // Runs nothing: a liveness probe answers while the process can answer at all.
            .AddCheck("process", () => HealthCheckResult.Healthy("the process is up"), [LiveTag]);
        services.AddGrpcHealthChecks(grpc =>
        {
            // The package maps "" to every check; here it is readiness, as /readyz (degraded still serves).
            grpc.Services.Map("", IsReady);
            grpc.Services.Map("readiness", IsReady);
            grpc.Services.Map(Grpc.GRPCInferenceService.Descriptor.FullName, IsReady);
            grpc.Services.Map("liveness", check => check.Tags.Contains(LiveTag));
        });
        return services;

        static bool IsReady(global::Grpc.AspNetCore.HealthChecks.HealthCheckMapContext check) => check.Tags.Contains(ReadyTag);
    }

    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder routes)
    {
        // Route handlers over the health-check service rather than MapHealthChecks: both are in the OpenAPI document.
        var liveness = routes.MapGet("/healthz", () => AliveResult)
            .Produces<Liveness>()
            .WithTags("Health").WithName("Liveness").WithSummary("The process is up.");
        var readiness = routes.MapGet("/readyz", Readiness)
            .WithTags("Health").WithName("Readiness")
            .WithSummary("Models loaded and warm (else 503); the feature store's state (degraded: its models are unready, the rest serve).");
        // Load balancers that probe with HEAD (HAProxy's httpchk, for one) get the same status without the body.
        var headProbes = new[] { routes.MapMethods("/healthz", [HttpMethods.Head], () => Results.Ok()), routes.MapMethods("/readyz", [HttpMethods.Head], ReadinessStatus) };
        if (!routes.ServiceProvider.GetRequiredService<Security.ApiKeys>().ProtectOperationalEndpoints)
        {
            // Probes arrive every few seconds from every kubelet: they answer from the routing middleware, skipping the
            // request log, the problem pages and the model middleware. With keys protecting them they take the full path.
            liveness.ShortCircuit();
            readiness.ShortCircuit();
            Array.ForEach(headProbes, probe => probe.ShortCircuit());
        }

        Array.ForEach(headProbes, probe => probe.ExcludeFromDescription());
        routes.MapGrpcHealthChecksService();

        return routes;
    }

    /// <summary>Liveness never changes: its body is serialised once and written as it is.</summary>
    private static readonly IResult AliveResult = new Utf8JsonBody("{\"status\":\"ok\"}"u8.ToArray());

    /// <summary>200 when healthy or degraded (the feature store down: only its models are unready), 503 when a model is not ready.</summary>
    internal static async Task<Results<Ok<ReadinessReport>, JsonHttpResult<ReadinessReport>>> Readiness(HealthCheckService health, CancellationToken cancellationToken)
    {
        var report = await health.CheckHealthAsync(check => check.Tags.Contains(ReadyTag), cancellationToken);
        var readiness = Describe(report);
        return report.Status == HealthStatus.Unhealthy
            ? TypedResults.Json(readiness, statusCode: StatusCodes.Status503ServiceUnavailable)
            : TypedResults.Ok(readiness);
    }

    /// <summary>Readiness's status alone, for HEAD.</summary>
    private static async Task<IResult> ReadinessStatus(HealthCheckService health, CancellationToken cancellationToken) =>
        Results.StatusCode((await health.CheckHealthAsync(check => check.Tags.Contains(ReadyTag), cancellationToken)).Status == HealthStatus.Unhealthy
            ? StatusCodes.Status503ServiceUnavailable
            : StatusCodes.Status200OK);

    private static ReadinessReport Describe(HealthReport report)
    {
        var models = report.Entries.TryGetValue("models", out var modelEntry) && modelEntry.Data.TryGetValue("models", out var m)
            ? (IReadOnlyList<ModelReadiness>)m : [];
        var store = report.Entries.TryGetValue("feature-store", out var storeEntry) && storeEntry.Data.TryGetValue("report", out var s)
            ? (FeatureStoreReport)s : null;
        return new ReadinessReport(
            report.Status switch { HealthStatus.Healthy => "ready", HealthStatus.Degraded => "degraded", _ => "not ready" },
            [.. report.Entries.Select(e => new CheckReport(e.Key, e.Value.Status.ToString(), e.Value.Description))],
            [.. models.Select(model => model.ReadsStore && store is { } s && (!s.Reachable || s.Missing.Any(m => m.Model == model.Name)) ? model with { Ready = false } : model)],
            store);
    }
}

/// <summary>Not stopping: once SIGTERM arrives, readiness fails so the pod leaves the load balancers while it drains.</summary>
internal sealed class ShutdownHealthCheck(ShutdownDrain drain) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(drain.Draining
            ? new HealthCheckResult(context.Registration.FailureStatus, "the service is stopping")
            : HealthCheckResult.Healthy("serving"));
}

/// <summary>Every model in the repository loaded and warmed up.</summary>
internal sealed class ModelsHealthCheck(ModelRegistry registry) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var models = registry.All.OrderBy(m => m.Name, StringComparer.Ordinal)
            .Select(m => new ModelReadiness(m.Name, m.Version, Loaded: true, m.Warm, m.Session.ExecutionProvider, m.Warm, FeatureStoreHealth.UsesStore(m)))
            .ToList();
        var data = new Dictionary<string, object> { ["models"] = models };
        var ready = registry.Loaded && models.All(m => m.Warm);
        return Task.FromResult(ready
            ? HealthCheckResult.Healthy($"{models.Count} model(s) loaded and warm", data)
            : new HealthCheckResult(context.Registration.FailureStatus, registry.Loaded ? "a model is not warm yet" : "the model repository is still loading", data: data));
    }
}

/// <summary>The feature store answers and holds the models' tables; when not, the check is degraded and names the models
/// that read it, and what is missing.</summary>
internal sealed class FeatureStoreHealthCheck(FeatureStoreHealth store, ModelRegistry registry) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var report = await store.CheckAsync(cancellationToken);
        var data = new Dictionary<string, object> { ["report"] = report };
        if (report.Reachable && report.Missing.Count == 0)
        {
            return HealthCheckResult.Healthy($"{report.Kind} answers", data);
        }

        if (report.Reachable)
        {
            // The service never creates or fills a production store: what is missing is named, for an operator to import.
            return new HealthCheckResult(context.Registration.FailureStatus,
                $"{report.Kind} lacks what models reading it need, so they are unready: {string.Join(" ", report.Missing.Select(m => m.Message))}", data: data);
        }

        var affected = registry.All.Where(FeatureStoreHealth.UsesStore).Select(m => m.Name).Order(StringComparer.Ordinal);
        return new HealthCheckResult(context.Registration.FailureStatus,
            $"{report.Kind} does not answer: models reading it are unready ({string.Join(", ", affected)})", data: data);
    }
}

public sealed record Liveness(string Status);

/// <param name="Name">The model.</param>
/// <param name="Version">The version served.</param>
/// <param name="Loaded">Its session exists.</param>
/// <param name="Warm">Its warm-up run succeeded.</param>
/// <param name="ExecutionProvider">Where its session runs.</param>
/// <param name="Ready">Loaded, warm and, for a model that reads the feature store, the store answering.</param>
/// <param name="ReadsStore">The model's features come from the feature store.</param>
public sealed record ModelReadiness(string Name, int Version, bool Loaded, bool Warm, string ExecutionProvider, bool Ready, bool ReadsStore);

public sealed record CheckReport(string Name, string Status, string? Description);

public sealed record ReadinessReport(string Status, IReadOnlyList<CheckReport> Checks, IReadOnlyList<ModelReadiness> Models, FeatureStoreReport? FeatureStore);

/// <summary>A 200 response whose JSON body was serialised once, written with its length.</summary>
internal sealed class Utf8JsonBody(byte[] body) : IResult
{
    public Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = body.Length;
        return response.Body.WriteAsync(body, httpContext.RequestAborted).AsTask();
    }
}
