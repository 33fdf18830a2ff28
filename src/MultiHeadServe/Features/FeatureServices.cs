using MultiHeadServe.Features.Images;
using MultiHeadServe.Features.Store;
using MultiHeadServe.Models;

namespace MultiHeadServe.Features;

public static class FeatureServices
{
    /// <summary>
    /// The online feature store (SQLite by default, PostgreSQL when FeatureStore:PostgresConnectionString is set),
    /// wrapped in its resilience pipeline, plus the fetcher the middleware uses, start-up seeding and the
    /// start-up check of the image codec.
    /// </summary>
    public static IServiceCollection AddFeatureSources(this IServiceCollection services)
    {
        services.AddFeatureStore();
        services.AddSingleton<FeatureStoreHealth>();
        services.AddSingleton<FeatureFetcher>();
        services.AddHostedService<FeatureStoreSeeding>();
        services.AddHostedService<ImageCodecStartupCheck>();
        return services;
    }
}

/// <summary>
/// Creates the store's tables from <c>models/&lt;name&gt;/features/*.csv</c> when they are absent, then checks
/// that every entity a manifest names exists with its columns, so a missing table fails start-up rather than
/// the first request. Runs after the models are loaded.
/// </summary>
public sealed class FeatureStoreSeeding(
    ModelRegistry registry,
    IFeatureStoreWriter writer,
    IFeatureStore store,
    ILogger<FeatureStoreSeeding> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var tabular = registry.All.Where(m => m.Manifest.Features.Source != "image").ToList();
        foreach (var directory in tabular
            .Select(m => Path.Combine(Path.GetDirectoryName(m.Directory)!, m.Manifest.Features.SeedFrom ?? m.Name, "features"))
            .Distinct(StringComparer.Ordinal))
        {
            foreach (var result in await FeatureSeeder.SeedDirectoryAsync(writer, directory, replace: false, cancellationToken))
            {
                logger.LogInformation("Feature table {Table}: {Outcome} ({Rows} rows)", result.Table, result.Outcome, result.RowCount);
            }
        }

        foreach (var model in tabular)
        {
            var entities = model.Manifest.Features.Entities ?? [];
            for (var e = 0; e < entities.Count; e++)
            {
                var entity = entities[e];
                var schema = await writer.DescribeTableAsync(entity.Table, cancellationToken);
                var file = Path.Combine(model.Name, ModelLoader.ManifestFile);
                if (schema is null)
                {
                    throw new ManifestException(file, $"features.entities[{e}].table",
                        $"the feature store ({writer.Kind}) has no table '{entity.Table}' and no features/{entity.Table}.csv seeds it.");
                }

                var missing = entity.Columns.Where(c => !schema.Columns.Contains(c)).ToList();
                if (missing.Count > 0)
                {
                    throw new ManifestException(file, $"features.entities[{e}].columns",
                        $"table '{entity.Table}' has no column(s) {string.Join(", ", missing)}.");
                }

                // One lookup through the resilience pipeline warms its code paths and the connection pool, so
                // the first client request is not the one that pays for them against the store's time budget.
                await store.GetRowsAsync(entity.Table, ["warm-up"], entity.Columns, cancellationToken);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
