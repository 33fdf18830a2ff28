namespace MultiHeadServe.Features.Store;

/// <summary>
/// Seeds feature tables from CSV files (<c>models/&lt;name&gt;/features/&lt;table&gt;.csv</c>) into
/// any <see cref="IFeatureStoreWriter"/>: the same files and rules for SQLite, PostgreSQL and Redis.
/// </summary>
/// <remarks>
/// Idempotent: a table that already exists is skipped unless <c>replace</c> is set. Transactional:
/// a malformed row anywhere in the file rolls the whole table back. Table names are global to the
/// store, so two models shipping <c>users.csv</c> share the first one seeded.
/// </remarks>
public static class FeatureSeeder
{
    /// <summary>Seeds <paramref name="table"/> from <paramref name="csvPath"/>.</summary>
    /// <param name="writer">The store to write to.</param>
    /// <param name="table">The table name; must match <c>^[A-Za-z_][A-Za-z0-9_]*$</c>.</param>
    /// <param name="csvPath">A CSV file: header (key column, then feature columns), then one row per entity.</param>
    /// <param name="replace">Rewrite the table even when it exists.</param>
    /// <param name="keyColumn">The CSV's key column; its first column when null.</param>
    /// <param name="cancellationToken">Cancels seeding; nothing is left half-written.</param>
    /// <exception cref="FeatureCsvException">The file is malformed; the message starts with <c>file:line:</c>.</exception>
    /// <exception cref="ArgumentException"><paramref name="table"/> is not a valid name.</exception>
    public static async Task<FeatureSeedResult> SeedAsync(
        IFeatureStoreWriter writer,
        string table,
        string csvPath,
        bool replace = false,
        string? keyColumn = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(writer);
        await using var csv = await FeatureCsvReader.OpenAsync(csvPath, table, keyColumn, cancellationToken);
        return await writer.WriteTableAsync(csv.Schema, csv.ReadRowsAsync(cancellationToken), replace, cancellationToken);
    }

    /// <summary>
    /// Seeds one table per <c>*.csv</c> file in <paramref name="directory"/>, named after the file
    /// (<c>users.csv</c> → <c>users</c>), in file-name order. A missing directory seeds nothing.
    /// </summary>
    /// <exception cref="FeatureCsvException">A file is malformed or its name is not a valid table name.</exception>
    public static async Task<IReadOnlyList<FeatureSeedResult>> SeedDirectoryAsync(
        IFeatureStoreWriter writer,
        string directory,
        bool replace = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory))
        {
            return [];
        }

        var files = Directory.EnumerateFiles(directory)
            .Where(file => string.Equals(Path.GetExtension(file), ".csv", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)
            .ToList();

        var results = new List<FeatureSeedResult>(files.Count);
        foreach (var file in files)
        {
            var table = Path.GetFileNameWithoutExtension(file);
            if (!SqlIdentifier.IsValid(table))
            {
                throw new FeatureCsvException(
                    $"{file}: the file name must be a table name matching ^[A-Za-z_][A-Za-z0-9_]*$ (at most {SqlIdentifier.MaxLength} characters).");
            }

            results.Add(await SeedAsync(writer, table, file, replace, keyColumn: null, cancellationToken));
        }

        return results;
    }
}
