using System.Collections.Concurrent;

namespace MultiHeadServe.Features.Store;

/// <summary>Request checks and result shaping shared by the SQL stores.</summary>
internal static class FeatureLookup
{
    /// <summary>
    /// Validates a lookup and returns its distinct keys: a ranking request repeats the same user
    /// for every candidate item, and the database only needs to see it once.
    /// </summary>
    public static List<string> Validate(string table, IReadOnlyList<string> keys, IReadOnlyList<string> columns)
    {
        SqlIdentifier.Validate(table, "table", nameof(table));
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(columns);
        if (columns.Count == 0)
        {
            throw new ArgumentException("At least one feature column is required.", nameof(columns));
        }

        foreach (var column in columns)
        {
            SqlIdentifier.Validate(column, "column", nameof(columns));
        }

        var seen = new HashSet<string>(keys.Count, StringComparer.Ordinal);
        var distinct = new List<string>(keys.Count);
        for (var i = 0; i < keys.Count; i++)
        {
            var key = keys[i] ?? throw new ArgumentException($"Key {i} is null.", nameof(keys));
            if (seen.Add(key))
            {
                distinct.Add(key);
            }
        }

        return distinct;
    }

    /// <summary>Lays the found rows out in request order; a repeated key gets its own copy.</summary>
    public static IReadOnlyList<float[]?> InRequestOrder(IReadOnlyList<string> keys, Dictionary<string, float[]> found)
    {
        var rows = new float[]?[keys.Count];
        var handedOut = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < rows.Length; i++)
        {
            if (found.TryGetValue(keys[i], out var values))
            {
                // Callers own the arrays they get (they may normalise in place), so no two
                // entries may share one.
                rows[i] = handedOut.Add(keys[i]) ? values : (float[])values.Clone();
            }
        }

        return rows;
    }

    /// <summary>The SELECT list: key column, then the requested columns, each validated and quoted.</summary>
    public static string SelectList(FeatureTableSchema schema, IReadOnlyList<string> columns) =>
        string.Join(", ", columns.Prepend(schema.KeyColumn).Select(SqlIdentifier.Quote));
}
