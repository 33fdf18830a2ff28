using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MultiHeadServe.Features.Store;

/// <summary>Registers the feature store.</summary>
public static class FeatureStoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the feature store configured by the <c>FeatureStore</c> section (validated at
    /// start-up):
    /// <list type="bullet">
    /// <item><see cref="IFeatureStore"/> — the resilient store the request path uses;</item>
    /// <item><see cref="IFeatureStoreWriter"/> — the backing SQLite, PostgreSQL or Redis store (no request
    /// timeout applies); the service writes only to the embedded SQLite store, for its demo seeding;</item>
    /// <item><see cref="FeatureStoreMetrics"/> — the <c>MultiHeadServe.Features</c> meter.</item>
    /// </list>
    /// All singletons; the container disposes the backing store.
    /// </summary>
    public static IServiceCollection AddFeatureStore(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);

        services.AddOptions<FeatureStoreOptions>()
            .BindConfiguration(FeatureStoreOptions.SectionName)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<FeatureStoreOptions>, FeatureStoreOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);

        services.TryAddSingleton(provider => provider.GetService<IMeterFactory>() is { } meterFactory
            ? new FeatureStoreMetrics(meterFactory)
            : new FeatureStoreMetrics());

        services.TryAddSingleton<IFeatureStoreWriter>(provider =>
        {
            var options = provider.GetRequiredService<IOptions<FeatureStoreOptions>>().Value;
            var contentRoot = provider.GetService<IHostEnvironment>()?.ContentRootPath ?? Directory.GetCurrentDirectory();
            return FeatureStoreFactory.Create(options, contentRoot);
        });

        services.TryAddSingleton<IFeatureStore>(provider => new ResilientFeatureStore(
            provider.GetRequiredService<IFeatureStoreWriter>(),
            provider.GetRequiredService<IOptions<FeatureStoreOptions>>().Value,
            provider.GetRequiredService<FeatureStoreMetrics>(),
            provider.GetRequiredService<ILogger<ResilientFeatureStore>>(),
            provider.GetRequiredService<TimeProvider>()));

        return services;
    }
}
