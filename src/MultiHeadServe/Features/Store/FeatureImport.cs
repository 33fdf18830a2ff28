namespace MultiHeadServe.Features.Store;

/// <summary>
/// What <c>mhs features import</c> does: loads CSV files into a feature store (SQLite, PostgreSQL or Redis), one
/// table per file. The service never writes to a production store; this is how one is filled.
/// </summary>
/// <remarks>
/// A path is a CSV file or a directory. A directory contributes its own <c>*.csv</c> files, those of its
/// <c>features/</c> folder (a model's), and those of each subfolder's <c>features/</c> folder (a model repository:
/// <c>mhs features import models</c> loads every demo table). A table is named after its file
/// (<c>users.csv</c> → <c>users</c>) unless <see cref="FeatureImportOptions.Table"/> names it.
/// </remarks>
public static class FeatureImport
{
    /// <summary>The CSV files <paramref name="paths"/> stand for, in order, each with the table it loads.</summary>
    /// <exception cref="FeatureCsvException">A path does not exist, holds no CSV, names an invalid table, or two files would load one table.</exception>
    public static IReadOnlyList<(string Table, string Path)> Files(IReadOnlyList<string> paths, string? table = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var files = new List<string>();
        foreach (var path in paths)
        {
            if (File.Exists(path))
            {
                files.Add(Path.GetFullPath(path));
            }
            else if (Directory.Exists(path))
            {
                var found = CsvFiles(path)
                    .Concat(CsvFiles(Path.Combine(path, "features")))
                    .Concat(Directory.EnumerateDirectories(path).Order(StringComparer.Ordinal).SelectMany(sub => CsvFiles(Path.Combine(sub, "features"))))
                    .ToList();
                if (found.Count == 0)
                {
                    throw new FeatureCsvException($"{path}: no CSV files here, in features/ or in any */features/.");
                }

                files.AddRange(found);
            }
            else
            {
                throw new FeatureCsvException($"{path}: no such file or directory.");
            }
        }

        if (table is not null && files.Count != 1)
        {
            throw new FeatureCsvException($"A table name can only be given for one CSV file; {files.Count} were found.");
        }

        var tables = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var result = new List<(string, string)>(files.Count);
        foreach (var file in files.Distinct(StringComparer.Ordinal))
        {
            var name = table ?? Path.GetFileNameWithoutExtension(file);
            if (!SqlIdentifier.IsValid(name))
            {
                throw new FeatureCsvException(
                    $"{file}: '{name}' is not a table name: expected 1 to {SqlIdentifier.MaxLength} characters matching ^[A-Za-z_][A-Za-z0-9_]*$.");
            }

            if (!tables.TryAdd(name, file))
            {
                throw new FeatureCsvException($"{file}: table '{name}' is also loaded from {tables[name]}.");
            }

            result.Add((name, file));
        }

        return result;
    }

    /// <summary>Loads every file <paramref name="paths"/> stand for into <paramref name="writer"/>, one table at a time.</summary>
    /// <returns>What happened to each table, in order.</returns>
    /// <exception cref="FeatureCsvException">A path or file is bad; tables loaded before it stay loaded.</exception>
    public static async Task<IReadOnlyList<FeatureSeedResult>> ImportAsync(
        IFeatureStoreWriter writer,
        IReadOnlyList<string> paths,
        FeatureImportOptions options,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(options);
        var results = new List<FeatureSeedResult>();
        foreach (var (table, file) in Files(paths, options.Table))
        {
            results.Add(await FeatureSeeder.SeedAsync(writer, table, file, options.Replace, options.KeyColumn, cancellationToken));
        }

        return results;
    }

    private static IEnumerable<string> CsvFiles(string directory) =>
        Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory)
                .Where(file => string.Equals(Path.GetExtension(file), ".csv", StringComparison.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal)
                .Select(Path.GetFullPath)
            : [];
}

/// <summary>How <see cref="FeatureImport"/> loads files.</summary>
public sealed record FeatureImportOptions
{
    /// <summary>The table to load a single file into; the file's name when null.</summary>
    public string? Table { get; init; }

    /// <summary>The key column of every file; each file's first column when null.</summary>
    public string? KeyColumn { get; init; }

    /// <summary>Rewrite tables that exist; by default they are left as they are.</summary>
    public bool Replace { get; init; }
}
