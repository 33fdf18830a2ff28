namespace MultiHeadServe.Features.Store;

/// <summary>Builds the backing store the options name: what the service and <c>mhs features import</c> both use.</summary>
public static class FeatureStoreFactory
{
    /// <summary>The SQLite, PostgreSQL or Redis store <paramref name="options"/> select; the caller disposes it.</summary>
    /// <param name="options">Validated options.</param>
    /// <param name="contentRoot">What a relative SQLite path is relative to.</param>
    /// <exception cref="ArgumentException">The options are invalid; every problem is named.</exception>
    public static FeatureStore Create(FeatureStoreOptions options, string contentRoot)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        return options.ResolveProvider() switch
        {
            FeatureStoreOptions.Postgres => new PostgresFeatureStore(options.PostgresConnectionString!),
            FeatureStoreOptions.Redis => new RedisFeatureStore(options.RedisConfiguration!, options.RedisKeys),
            _ => new SqliteFeatureStore(Path.Combine(contentRoot, options.SqlitePath)),
        };
    }
}
