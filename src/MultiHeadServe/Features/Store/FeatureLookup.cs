using System.Collections.Concurrent;

namespace MultiHeadServe.Features.Store;

/// <summary>Request checks and result shaping shared by the SQL stores.</summary>
internal static class FeatureLookup
{
    /// <summary>
    /// Validates a lookup and returns its distinct keys: a ranking request repeats the same user
    /// for every candidate item, and the database only needs to see it once.
    /// </summary>
    public static IReadOnlyList<string> Validate(string table, IReadOnlyList<string> keys, IReadOnlyList<string> columns)
    {
        SqlIdentifier.Validate(table, "table", nameof(table));
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(columns);
        if (columns.Count == 0)
        {
            throw new ArgumentException("At least one feature column is required.", nameof(columns));
        }

        if (!ValidatedColumns.ContainsKey(columns))
        {
            foreach (var column in columns)
            {
                SqlIdentifier.Validate(column, "column", nameof(columns));
            }

            // A manifest's column list arrives with every request: checked once. Lists made per call are not kept.
            if (ValidatedColumns.Count < MaxRemembered)
            {
                ValidatedColumns.TryAdd(columns, 0);
            }
        }

        for (var i = 0; i < keys.Count; i++)
        {
            if (keys[i] is null)
            {
                throw new ArgumentException($"Key {i} is null.", nameof(keys));
            }
        }

        return Distinct(keys);
    }

    /// <summary>The keys without repeats, first occurrence first; the list itself when it has none (most requests).</summary>
    private static IReadOnlyList<string> Distinct(IReadOnlyList<string> keys)
    {
        if (keys.Count <= SmallList)
        {
            var repeated = false;
            for (var i = 1; i < keys.Count && !repeated; i++)
            {
                repeated = IndexOf(keys, keys[i], i) >= 0;
            }

            if (!repeated)
            {
                return keys;
            }
        }

        var seen = new HashSet<string>(keys.Count, StringComparer.Ordinal);
        var distinct = new List<string>(keys.Count);
        foreach (var key in keys)
        {
            if (seen.Add(key))
            {
                distinct.Add(key);
            }
        }

        return distinct;
    }

    /// <summary>Where <paramref name="key"/> occurs among the first <paramref name="count"/> keys, or -1.</summary>
    private static int IndexOf(IReadOnlyList<string> keys, string key, int count)
    {
        for (var j = 0; j < count; j++)
        {
            if (string.Equals(keys[j], key, StringComparison.Ordinal))
            {
                return j;
            }
        }

        return -1;
    }

    public static IReadOnlyList<float[]?> InRequestOrder(IReadOnlyList<string> keys, Dictionary<string, float[]> found)
    {
        var rows = new float[]?[keys.Count];
        HashSet<string>? handedOut = keys.Count > SmallList ? new HashSet<string>(StringComparer.Ordinal) : null;
        for (var i = 0; i < rows.Length; i++)
        {
            if (found.TryGetValue(keys[i], out var values))
            {
                // Callers own the arrays they get (they may normalise in place), so no two
                // entries may share one.
                var first = handedOut?.Add(keys[i]) ?? IndexOf(keys, keys[i], i) < 0;
                rows[i] = first ? values : (float[])values.Clone();
            }
        }

        return rows;
    }

    public static string SelectList(FeatureTableSchema schema, IReadOnlyList<string> columns) =>
        string.Join(", ", columns.Prepend(schema.KeyColumn).Select(SqlIdentifier.Quote));

    /// <summary>
    /// A store's statement text for a table's shape and a column list, built once by <paramref name="build"/> and
    /// remembered by the identity of both (a cached schema and a manifest's column list are the same objects on
    /// every request); <paramref name="variant"/> tells a store's statements apart.
    /// </summary>
    public static string Statement(FeatureTableSchema schema, IReadOnlyList<string> columns, string variant, Func<FeatureTableSchema, IReadOnlyList<string>, string> build)
    {
        var key = new StatementKey(schema, columns, variant);
        if (Statements.TryGetValue(key, out var text))
        {
            return text;
        }

        text = build(schema, columns);
        if (Statements.Count >= MaxRemembered)
        {
            Statements.Clear(); // shapes that change all the time (tests, reloads) do not pile up
        }

        Statements.TryAdd(key, text);
        return text;
    }

    private const int SmallList = 8;
    private const int MaxRemembered = 1024;

    private static readonly ConcurrentDictionary<IReadOnlyList<string>, byte> ValidatedColumns = new(ReferenceEqualityComparer.Instance);
    private static readonly ConcurrentDictionary<StatementKey, string> Statements = new();

    /// <summary>Compared by the identity of the schema and the column list, and the variant's text.</summary>
    private readonly struct StatementKey(FeatureTableSchema schema, IReadOnlyList<string> columns, string variant) : IEquatable<StatementKey>
    {
        private readonly FeatureTableSchema _schema = schema;
        private readonly IReadOnlyList<string> _columns = columns;
        private readonly string _variant = variant;

        public bool Equals(StatementKey other) =>
            ReferenceEquals(_schema, other._schema) && ReferenceEquals(_columns, other._columns) && string.Equals(_variant, other._variant, StringComparison.Ordinal);

        public override bool Equals(object? obj) => obj is StatementKey other && Equals(other);

        public override int GetHashCode() =>
            HashCode.Combine(System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(_schema), System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(_columns), _variant);
    }
}
