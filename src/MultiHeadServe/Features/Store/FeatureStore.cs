namespace MultiHeadServe.Features.Store;

/// <summary>
/// The outline every backing store follows: validate a request's lookups, fetch each table's keys once, check
/// the columns against the table's cached shape, run the store's one query for all of them, and lay the rows out
/// in request order. A store supplies only what is specific to its driver: the query
/// (<see cref="ReadRowsAsync"/>), reading a table's shape, the ping and the bulk write.
/// </summary>
/// <remarks>Thread-safe: a subclass's driver calls must be too. Register as a singleton.</remarks>
public abstract class FeatureStore : IFeatureStoreWriter
{
    private readonly FeatureSchemaCache _schemas;

    /// <param name="kind">The store's name, for <see cref="Kind"/> and messages.</param>
    /// <param name="nameComparer">How the store compares table and column names (SQLite ignores case).</param>
    protected FeatureStore(string kind, StringComparer nameComparer)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        Kind = kind;
        _schemas = new FeatureSchemaCache(kind, nameComparer, ReadSchemaAsync);
    }

    /// <inheritdoc />
    public string Kind { get; }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<float[]?>> GetRowsAsync(
        string table,
        IReadOnlyList<string> keys,
        IReadOnlyList<string> columns,
        CancellationToken cancellationToken) =>
        (await GetEntitiesAsync([new EntityLookup(table, keys, columns)], cancellationToken))[0];

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<IReadOnlyList<float[]?>>> GetEntitiesAsync(
        IReadOnlyList<EntityLookup> lookups,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lookups);
        var distinct = new IReadOnlyList<string>[lookups.Count];
        for (var i = 0; i < lookups.Count; i++)
        {
            var lookup = lookups[i] ?? throw new ArgumentException($"Lookup {i} is null.", nameof(lookups));
            distinct[i] = FeatureLookup.Validate(lookup.Table, lookup.Keys, lookup.Columns);
        }

        cancellationToken.ThrowIfCancellationRequested();
        var queries = new List<EntityQuery>(lookups.Count);
        for (var i = 0; i < lookups.Count; i++)
        {
            // An empty key list needs no table: nothing is asked of the store for it.
            if (distinct[i].Count > 0)
            {
                var schema = await _schemas.GetAsync(lookups[i].Table, lookups[i].Columns, cancellationToken);
                queries.Add(new EntityQuery(i, schema, lookups[i].Columns, distinct[i]));
            }
        }

        if (queries.Count > 0)
        {
            try
            {
                await ReadRowsAsync(queries, cancellationToken);
            }
            catch (Exception exception) when (IsSchemaChange(exception))
            {
                // Most likely a table changed underneath its cached shape; read it afresh next time.
                foreach (var query in queries)
                {
                    _schemas.Invalidate(query.Schema.Table);
                }

                throw;
            }
        }

        var results = new IReadOnlyList<float[]?>[lookups.Count];
        for (var i = 0; i < results.Length; i++)
        {
            results[i] = [];
        }

        foreach (var query in queries)
        {
            results[query.Index] = FeatureLookup.InRequestOrder(lookups[query.Index].Keys, query.Found);
        }

        return results;
    }

    /// <inheritdoc />
    public ValueTask<FeatureTableSchema?> DescribeTableAsync(string table, CancellationToken cancellationToken) =>
        _schemas.RefreshAsync(table, cancellationToken);

    /// <inheritdoc />
    public abstract ValueTask<bool> PingAsync(CancellationToken cancellationToken);

    /// <inheritdoc />
    public abstract ValueTask<FeatureSeedResult> WriteTableAsync(
        FeatureTableSchema schema,
        IAsyncEnumerable<FeatureRow> rows,
        bool replace,
        CancellationToken cancellationToken);

    /// <summary>
    /// The store's query: reads the rows of every one of <paramref name="queries"/> (tables already checked, keys
    /// distinct and at least one per query) in one round trip, adding each row found with
    /// <see cref="EntityQuery.Add"/>. A key that is absent is simply not added.
    /// </summary>
    protected abstract ValueTask ReadRowsAsync(IReadOnlyList<EntityQuery> queries, CancellationToken cancellationToken);

    /// <summary>Reads <paramref name="table"/>'s shape from the store, or null when it has no such table.</summary>
    protected abstract ValueTask<FeatureTableSchema?> ReadSchemaAsync(string table, CancellationToken cancellationToken);

    /// <summary>Whether a failed query means the tables' cached shapes may be stale (not a transient failure).</summary>
    protected virtual bool IsSchemaChange(Exception exception) => false;

    /// <summary>Records the shape of a table just written, so its first lookup needs no extra round trip.</summary>
    protected void Remember(FeatureTableSchema schema) => _schemas.Remember(schema);

    /// <summary>Forgets a table's cached shape.</summary>
    protected void Forget(string table) => _schemas.Invalidate(table);
}

/// <summary>One table's part of a request: the keys to look up there and the feature columns wanted.</summary>
/// <param name="Table">The entity table, e.g. <c>users</c>.</param>
/// <param name="Keys">Entity keys, duplicates allowed (a ranking request repeats its user).</param>
/// <param name="Columns">Feature columns to return, in the order wanted.</param>
public sealed record EntityLookup(string Table, IReadOnlyList<string> Keys, IReadOnlyList<string> Columns);

/// <summary>
/// One table's part of a store query, as a store's driver sees it: the checked shape, the columns and the
/// distinct keys, and the rows found so far. Used by one query at a time.
/// </summary>
public sealed class EntityQuery
{
    internal EntityQuery(int index, FeatureTableSchema schema, IReadOnlyList<string> columns, IReadOnlyList<string> keys)
    {
        Index = index;
        Schema = schema;
        Columns = columns;
        Keys = keys;
        Found = new Dictionary<string, float[]>(keys.Count, StringComparer.Ordinal);
    }

    /// <summary>The table's shape (its name as the store spells it, and its key column).</summary>
    public FeatureTableSchema Schema { get; }

    /// <summary>The feature columns to read, in order; each exists in <see cref="Schema"/>.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>The keys to look up, each once.</summary>
    public IReadOnlyList<string> Keys { get; }

    internal int Index { get; }

    internal Dictionary<string, float[]> Found { get; }

    /// <summary>Records the row of <paramref name="key"/>: one value per column of <see cref="Columns"/>, NaN where missing.</summary>
    public void Add(string key, float[] values)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != Columns.Count)
        {
            throw new ArgumentException($"Expected {Columns.Count} values for '{key}', got {values.Length}.", nameof(values));
        }

        Found[key] = values;
    }
}
