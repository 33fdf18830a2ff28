namespace MultiHeadServe.Features.Store;

/// <summary>
/// The online feature store: entity rows of float features, looked up by key.
/// </summary>
/// <remarks>
/// Implementations are thread-safe and meant to be singletons. Table and column names must match
/// <c>^[A-Za-z_][A-Za-z0-9_]*$</c> (at most 63 characters); anything else is rejected with an
/// <see cref="ArgumentException"/> before any query is built. Keys are always sent as data (parameters).
/// </remarks>
public interface IFeatureStore
{
    /// <summary>The backing store: <c>"sqlite"</c>, <c>"postgres"</c> or <c>"redis"</c>. Used as a metric tag.</summary>
    string Kind { get; }

    /// <summary>
    /// Fetches the rows of <paramref name="keys"/> from <paramref name="table"/> in one round trip.
    /// </summary>
    /// <param name="table">The entity table, e.g. <c>users</c>.</param>
    /// <param name="keys">Entity keys, duplicates allowed (a ranking request often repeats its user).</param>
    /// <param name="columns">Feature columns to return, in the order wanted.</param>
    /// <param name="cancellationToken">Cancels the lookup.</param>
    /// <returns>
    /// One entry per key, in the order of <paramref name="keys"/>: the values of
    /// <paramref name="columns"/> in that order (a SQL NULL reads as <see cref="float.NaN"/>), or
    /// <see langword="null"/> when the key is unknown. Each entry is a fresh array the caller owns.
    /// </returns>
    /// <exception cref="ArgumentException">An invalid table or column name, a null key or no columns.</exception>
    /// <exception cref="FeatureSchemaException">The table or one of the columns does not exist.</exception>
    /// <exception cref="FeatureStoreUnavailableException">The store did not answer (resilient store only).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    ValueTask<IReadOnlyList<float[]?>> GetRowsAsync(
        string table,
        IReadOnlyList<string> keys,
        IReadOnlyList<string> columns,
        CancellationToken cancellationToken);

    /// <summary>
    /// Fetches the rows of every lookup of a request, whatever their tables, in one round trip: what a request
    /// whose rows join several entities (a user and an item) needs.
    /// </summary>
    /// <param name="lookups">One per table; a table may not have been checked yet.</param>
    /// <param name="cancellationToken">Cancels the lookup.</param>
    /// <returns>One result per lookup, in order, each as <see cref="GetRowsAsync"/> returns it.</returns>
    /// <exception cref="ArgumentException">An invalid table or column name, a null key or no columns.</exception>
    /// <exception cref="FeatureSchemaException">A table or one of its columns does not exist.</exception>
    /// <exception cref="FeatureStoreUnavailableException">The store did not answer (resilient store only).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    ValueTask<IReadOnlyList<IReadOnlyList<float[]?>>> GetEntitiesAsync(
        IReadOnlyList<EntityLookup> lookups,
        CancellationToken cancellationToken);

    /// <summary>
    /// Describes <paramref name="table"/> (key column and feature columns), or returns
    /// <see langword="null"/> when it does not exist. Lets model loading check a manifest's entities
    /// against the store before the first request.
    /// </summary>
    ValueTask<FeatureTableSchema?> DescribeTableAsync(string table, CancellationToken cancellationToken);

    /// <summary>
    /// Whether the store answers a trivial query; for <c>/readyz</c>. Never throws for an unreachable
    /// store (returns <see langword="false"/>); throws <see cref="OperationCanceledException"/> only
    /// when <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    ValueTask<bool> PingAsync(CancellationToken cancellationToken);
}
