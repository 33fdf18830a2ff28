using MultiHeadServe.Features.Images;
using MultiHeadServe.Features.Store;
using MultiHeadServe.Models;

namespace MultiHeadServe.Features;

public static class FeatureServices
{
    /// <summary>
    /// The online feature store (SQLite by default, PostgreSQL or Redis when FeatureStore:PostgresConnectionString or
    /// FeatureStore:RedisConfiguration is set), wrapped in its resilience pipeline, plus the fetcher the middleware
    /// uses, the start-up check of the store's tables (and the embedded store's demo seeding) and the start-up check
    /// of the image codec.
    /// </summary>
    public static IServiceCollection AddFeatureSources(this IServiceCollection services)
    {
        services.AddFeatureStore();
        services.AddSingleton<FeatureStoreHealth>();
        services.AddSingleton<TensorBudget>();
        services.AddSingleton<BodyBudget>();
        services.AddSingleton<FeatureFetcher>();
        services.AddHostedService<FeatureStoreStartup>();
        services.AddHostedService<ImageCodecStartupCheck>();
        return services;
    }
}

/// <summary>
/// At start-up, after the models are loaded: seeds the embedded SQLite store from <c>models/&lt;name&gt;/features/*.csv</c>
/// (tables that are absent only), so the demo runs on a fresh machine; then checks that the store holds every table
/// and column the manifests name, logging what is missing; then warms the lookup path. A production store
/// (PostgreSQL, Redis) is only read: nothing is created or written there (<c>mhs features import</c> loads it), and
/// a missing table or an unreachable store makes the models reading it unready rather than stopping the service.
/// </summary>
public sealed class FeatureStoreStartup(
    ModelRegistry registry,
    IFeatureStoreWriter writer,
    IFeatureStore store,
    FeatureStoreHealth health,
    ILogger<FeatureStoreStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var tabular = registry.All.Where(m => m.Manifest.Features.Source != FeatureSource.Image).ToList();
        if (writer is SqliteFeatureStore)
        {
            foreach (var directory in tabular
                .Select(m => Path.Combine(Path.GetDirectoryName(m.Directory)!, m.Manifest.Features.SeedFrom ?? m.Name, "features"))
                .Distinct(StringComparer.Ordinal))
            {
                foreach (var result in await FeatureSeeder.SeedDirectoryAsync(writer, directory, replace: false, cancellationToken))
                {
                    logger.LogInformation("Feature table {Table}: {Outcome} ({Rows} rows)", result.Table, result.Outcome, result.RowCount);
                }
            }
        }

        var report = await health.CheckAsync(cancellationToken);
        if (!report.Reachable)
        {
            logger.LogWarning("Feature store {Store} does not answer at start-up: the models reading it are unready until it does", report.Kind);
            return;
        }

        foreach (var missing in report.Missing)
        {
            logger.LogWarning("Feature store {Store} is missing features a model needs: {Missing}", report.Kind, missing.Message);
        }

        foreach (var model in tabular.Where(m => m.Manifest.Features.Entities is { Count: > 0 } && !report.Missing.Any(x => x.Model == m.Name)))
        {
            try
            {
                // One lookup through the resilience pipeline warms its code paths and the connections, so the first
                // client request is not the one that pays for them against the store's time budget.
                await store.GetEntitiesAsync(
                    [.. model.Manifest.Features.Entities!.Select(entity => new EntityLookup(entity.Table, ["warm-up"], entity.Columns))],
                    cancellationToken);
            }
            catch (Exception exception) when (exception is FeatureStoreUnavailableException or FeatureSchemaException)
            {
                logger.LogWarning(exception, "Warming feature lookups of {Model} failed", model.Name);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
