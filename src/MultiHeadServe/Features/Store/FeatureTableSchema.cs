namespace MultiHeadServe.Features.Store;

/// <summary>A feature table's shape: a text key column and float feature columns.</summary>
/// <param name="Table">The table name.</param>
/// <param name="KeyColumn">The primary-key column holding the entity key, e.g. <c>user_id</c>.</param>
/// <param name="Columns">The feature columns, in table order.</param>
public sealed record FeatureTableSchema(string Table, string KeyColumn, IReadOnlyList<string> Columns);

/// <summary>One entity row being written: its key and one value per feature column.</summary>
public readonly record struct FeatureRow(string Key, float[] Values);
