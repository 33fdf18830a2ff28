using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// Reads a feature seed CSV: a header naming the key column (the first, or the one named) and the feature
/// columns, then one row per entity. Deliberately strict and small: comma-separated, no quoting, invariant-culture
/// numbers, <c>NaN</c> for a missing value. Every rejected line is reported as <c>file:line</c>.
/// </summary>
/// <remarks>The header is read on open; rows stream, so a large file is never held in memory.
/// Not thread-safe; enumerate the rows once.</remarks>
internal sealed class FeatureCsvReader : IAsyncDisposable
{
    private readonly StreamReader _reader;
    private readonly string _path;
    private int _line;

    private readonly int _keyIndex;

    private FeatureCsvReader(StreamReader reader, string path, FeatureTableSchema schema, int keyIndex)
    {
        _reader = reader;
        _path = path;
        Schema = schema;
        _keyIndex = keyIndex;
        _line = 1;
    }

    /// <summary>The table the file describes: <c>table</c>, the header's key column and feature columns.</summary>
    public FeatureTableSchema Schema { get; }

    /// <summary>Opens <paramref name="path"/> and parses its header as the schema of <paramref name="table"/>.</summary>
    /// <param name="path">The CSV file.</param>
    /// <param name="table">The table it describes.</param>
    /// <param name="keyColumn">The key column; the first column when null. The others are the feature columns, in file order.</param>
    /// <param name="cancellationToken">Cancels reading the header.</param>
    /// <exception cref="FeatureCsvException">The header is missing or malformed, or has no <paramref name="keyColumn"/>.</exception>
    public static async Task<FeatureCsvReader> OpenAsync(string path, string table, string? keyColumn, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SqlIdentifier.Validate(table, "table", nameof(table));

        var stream = new FileStream(
            path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 64 * 1024,
            FileOptions.Asynchronous | FileOptions.SequentialScan);
        var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        try
        {
            var header = await reader.ReadLineAsync(cancellationToken);
            var (schema, keyIndex) = ParseHeader(path, table, header, keyColumn);
            return new FeatureCsvReader(reader, path, schema, keyIndex);
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    /// <summary>Streams the data rows.</summary>
    /// <exception cref="FeatureCsvException">A row is malformed; the message names the file and line.</exception>
    public async IAsyncEnumerable<FeatureRow> ReadRowsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var columns = Schema.Columns;
        var expectedFields = columns.Count + 1;
        // Duplicate keys are caught here rather than as a primary-key violation, whose message
        // would not say where in the file the second one is.
        var firstLineOfKey = new Dictionary<string, int>(StringComparer.Ordinal);

        while (await _reader.ReadLineAsync(cancellationToken) is { } text)
        {
            _line++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            if (text.Contains('"', StringComparison.Ordinal))
            {
                throw Error("quoted fields are not supported.");
            }

            var fields = text.Split(',');
            if (fields.Length != expectedFields)
            {
                throw Error($"expected {expectedFields} fields ({Schema.KeyColumn} and {columns.Count} features), found {fields.Length}.");
            }

            var key = fields[_keyIndex].Trim();
            if (key.Length == 0)
            {
                throw Error($"empty key in column '{Schema.KeyColumn}'.");
            }

            if (!firstLineOfKey.TryAdd(key, _line))
            {
                throw Error($"duplicate key '{key}' (first on line {firstLineOfKey[key]}).");
            }

            var values = new float[columns.Count];
            for (var i = 0; i < values.Length; i++)
            {
                // The key's field is skipped: feature i sits at i, or i + 1 once past the key.
                values[i] = ParseValue(fields[i < _keyIndex ? i : i + 1], columns[i]);
            }

            yield return new FeatureRow(key, values);
        }
    }

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        return ValueTask.CompletedTask;
    }

    private static (FeatureTableSchema Schema, int KeyIndex) ParseHeader(string path, string table, string? header, string? keyColumn)
    {
        if (string.IsNullOrWhiteSpace(header))
        {
            throw new FeatureCsvException(path, 1, "header expected: the key column's name, then the feature columns' names.");
        }

        if (header.Contains('"', StringComparison.Ordinal))
        {
            throw new FeatureCsvException(path, 1, "quoted fields are not supported.");
        }

        var names = header.Split(',').Select(name => name.Trim()).ToArray();
        if (names.Length < 2)
        {
            throw new FeatureCsvException(path, 1, "header needs a key column and at least one feature column.");
        }

        // SQLite compares identifiers case-insensitively, so 'Age' and 'age' would collide there.
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in names)
        {
            if (!SqlIdentifier.IsValid(name))
            {
                throw new FeatureCsvException(
                    path, 1, $"column name '{name}' is invalid: expected 1 to {SqlIdentifier.MaxLength} characters matching ^[A-Za-z_][A-Za-z0-9_]*$.");
            }

            if (!seen.Add(name))
            {
                throw new FeatureCsvException(path, 1, $"column '{name}' appears twice.");
            }
        }

        var keyIndex = keyColumn is null ? 0 : Array.IndexOf(names, keyColumn);
        if (keyIndex < 0)
        {
            throw new FeatureCsvException(path, 1, $"no key column '{keyColumn}'; the columns are {string.Join(", ", names)}.");
        }

        return (new FeatureTableSchema(table, names[keyIndex], [.. names.Where((_, i) => i != keyIndex)]), keyIndex);
    }

    private float ParseValue(string field, string column)
    {
        var text = field.Trim();
        if (text.Length == 0)
        {
            throw Error($"empty value in column '{column}'; write NaN for a missing value.");
        }

        if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            throw Error($"'{text}' in column '{column}' is not a number.");
        }

        // float.Parse turns out-of-range input into infinity instead of failing; a model never
        // wants that, and NaN is the one spelling of "missing".
        if (float.IsInfinity(value))
        {
            throw Error($"'{text}' in column '{column}' is not a finite float32 value.");
        }

        return value;
    }

    private FeatureCsvException Error(string reason) => new(_path, _line, reason);
}
