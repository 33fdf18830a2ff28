using System.Collections.Concurrent;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// Table shapes already read from a store, so that a lookup costs one round trip: only the first
/// lookup of a table reads its shape. Thread-safe.
/// </summary>
/// <param name="kind">The store, for messages.</param>
/// <param name="nameComparer">How the store compares identifiers (SQLite ignores case).</param>
/// <param name="describe">Reads a table's shape from the store; null when absent.</param>
internal sealed class FeatureSchemaCache(
    string kind,
    StringComparer nameComparer,
    Func<string, CancellationToken, ValueTask<FeatureTableSchema?>> describe)
{
    private readonly ConcurrentDictionary<string, Entry> _tables = new(nameComparer);

    /// <summary>
    /// The shape of <paramref name="table"/>, after checking that it has every one of
    /// <paramref name="columns"/> as a feature column.
    /// </summary>
    /// <exception cref="FeatureSchemaException">The table or some columns do not exist; all are named.</exception>
    public async ValueTask<FeatureTableSchema> GetAsync(
        string table, IReadOnlyList<string> columns, CancellationToken cancellationToken)
    {
        if (!_tables.TryGetValue(table, out var entry))
        {
            var schema = await describe(table, cancellationToken)
                ?? throw new FeatureSchemaException($"Feature table '{table}' does not exist in the {kind} feature store.");
            entry = Set(schema);
        }

        if (entry.Checked.ContainsKey(columns))
        {
            return entry.Schema; // this very column list was checked against this shape already
        }

        var missing = columns.Where(column => !entry.Columns.Contains(column)).Distinct(nameComparer).ToList();
        if (missing.Count > 0)
        {
            throw new FeatureSchemaException(
                $"Feature table '{entry.Schema.Table}' in the {kind} feature store has no column " +
                $"{string.Join(", ", missing.Select(column => $"'{column}'"))}; its columns are " +
                $"{string.Join(", ", entry.Schema.Columns)} (key {entry.Schema.KeyColumn}).");
        }

        if (entry.Checked.Count < 64)
        {
            entry.Checked.TryAdd(columns, 0);
        }

        return entry.Schema;
    }

    /// <summary>Records a shape just read or written.</summary>
    public void Remember(FeatureTableSchema schema) => Set(schema);

    /// <summary>Reads the table's schema afresh from the store and caches (or forgets) it.</summary>
    public async ValueTask<FeatureTableSchema?> RefreshAsync(string table, CancellationToken cancellationToken)
    {
        SqlIdentifier.Validate(table, "table", nameof(table));
        var schema = await describe(table, cancellationToken);
        if (schema is null)
        {
            Invalidate(table);
        }
        else
        {
            Remember(schema);
        }

        return schema;
    }

    /// <summary>Forgets a table, e.g. after a query against it failed because it changed underneath.</summary>
    public void Invalidate(string table) => _tables.TryRemove(table, out _);

    private Entry Set(FeatureTableSchema schema)
    {
        var entry = new Entry(schema, new HashSet<string>(schema.Columns, nameComparer));
        _tables[schema.Table] = entry;
        return entry;
    }

    private sealed record Entry(FeatureTableSchema Schema, HashSet<string> Columns)
    {
        /// <summary>Column lists (by identity: a manifest's list is the same object on every request) found complete.</summary>
        public ConcurrentDictionary<IReadOnlyList<string>, byte> Checked { get; } = new(ReferenceEqualityComparer.Instance);
    }
}
