using System.Text.RegularExpressions;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// Table and column names that end up inside SQL text. Values always travel as parameters, but
/// identifiers cannot, so every identifier is checked against a strict pattern and then quoted.
/// </summary>
internal static partial class SqlIdentifier
{
    /// <summary>PostgreSQL silently truncates longer names, which could make two names collide.</summary>
    public const int MaxLength = 63;

    public static bool IsValid(string? name) =>
        name is { Length: > 0 and <= MaxLength } && Pattern().IsMatch(name);

    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="what"/> unless the name is valid.</summary>
    public static string Validate(string? name, string what, string paramName)
    {
        if (!IsValid(name))
        {
            throw new ArgumentException(
                $"Invalid {what} name '{name}': expected 1 to {MaxLength} characters matching ^[A-Za-z_][A-Za-z0-9_]*$.",
                paramName);
        }

        return name!;
    }

    /// <summary>Double-quotes a validated name; the pattern excludes quotes, so no escaping is needed.</summary>
    public static string Quote(string name)
    {
        if (!IsValid(name))
        {
            throw new ArgumentException($"Refusing to quote invalid identifier '{name}'.", nameof(name));
        }

        return "\"" + name + "\"";
    }

    // \z rather than $: $ also matches before a trailing newline.
    /// <summary>
    /// Validates and quotes a table about to be created: its name, key column and at least one
    /// feature column.
    /// </summary>
    public static (string Table, string Key, IReadOnlyList<string> Columns) QuoteSchema(FeatureTableSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        if (schema.Columns is not { Count: > 0 })
        {
            throw new ArgumentException($"Feature table '{schema.Table}' needs at least one feature column.", nameof(schema));
        }

        return (
            Quote(Validate(schema.Table, "table", nameof(schema))),
            Quote(Validate(schema.KeyColumn, "key column", nameof(schema))),
            schema.Columns.Select(column => Quote(Validate(column, "column", nameof(schema)))).ToList());
    }

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*\z", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
