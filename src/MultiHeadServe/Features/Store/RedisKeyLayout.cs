using System.Collections.Concurrent;
using System.Text;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// Where an entity's features live in Redis: one hash per entity, at a key made from a template, one hash field
/// per feature column. Bound from <c>FeatureStore:RedisKeys</c>.
/// </summary>
/// <remarks>
/// <para>A template holds <c>{key}</c> (the entity key) exactly once and may hold <c>{table}</c> (the manifest's
/// entity table); everything else is literal. The default, <c>{table}:{key}</c>, puts user <c>u0001</c> of table
/// <c>users</c> at <c>users:u0001</c>. A team whose keys already follow another scheme names it, for every table
/// (<c>Template = "features:{table}:{key}"</c>) or for one (<c>Tables:users = "user:{key}"</c>).</para>
/// <para>Thread-safe once configured; not to be changed after the store is built.</para>
/// </remarks>
public sealed class RedisKeyLayout : IEquatable<RedisKeyLayout>
{
    /// <summary>The template used when none is configured.</summary>
    public const string DefaultTemplate = "{table}:{key}";

    private const string KeyPlaceholder = "{key}";
    private const string TablePlaceholder = "{table}";

    private readonly ConcurrentDictionary<string, (string Prefix, string Suffix)> _parts = new(StringComparer.Ordinal);

    /// <summary>The key template of every table without one of its own. Default <c>{table}:{key}</c>.</summary>
    public string Template { get; set; } = DefaultTemplate;

    /// <summary>Key templates of single tables, by table name; these win over <see cref="Template"/>.</summary>
    public Dictionary<string, string> Tables { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Same templates, for every table and per table.</summary>
    public bool Equals(RedisKeyLayout? other) =>
        other is not null && Template == other.Template &&
        (Tables ?? []).OrderBy(t => t.Key, StringComparer.Ordinal).SequenceEqual((other.Tables ?? []).OrderBy(t => t.Key, StringComparer.Ordinal));

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as RedisKeyLayout);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Template, Tables?.Count ?? 0);

    /// <summary>The Redis key of entity <paramref name="key"/> of <paramref name="table"/>.</summary>
    public string KeyFor(string table, string key)
    {
        var (prefix, suffix) = Parts(table);
        return string.Concat(prefix, key, suffix);
    }

    /// <summary>The entity key inside a Redis key of <paramref name="table"/>, or null when the key is not one of its.</summary>
    public string? EntityKeyOf(string table, string redisKey)
    {
        var (prefix, suffix) = Parts(table);
        return redisKey.Length > prefix.Length + suffix.Length
            && redisKey.StartsWith(prefix, StringComparison.Ordinal)
            && redisKey.EndsWith(suffix, StringComparison.Ordinal)
            ? redisKey[prefix.Length..^suffix.Length]
            : null;
    }

    /// <summary>A <c>SCAN MATCH</c> pattern for every key of <paramref name="table"/>: the literal parts escaped, the entity key a <c>*</c>.</summary>
    public string PatternFor(string table)
    {
        var (prefix, suffix) = Parts(table);
        return Escape(prefix) + "*" + Escape(suffix);
    }

    /// <summary>The template in force for <paramref name="table"/>.</summary>
    public string TemplateFor(string table) =>
        Tables is not null && Tables.TryGetValue(table, out var own) && !string.IsNullOrEmpty(own) ? own : Template;

    /// <summary>Every problem with the templates, phrased with its configuration key; empty when valid.</summary>
    public IReadOnlyList<string> Validate(string section)
    {
        var errors = new List<string>();
        Check($"{section}:Template", Template);
        foreach (var (table, template) in Tables ?? [])
        {
            if (!SqlIdentifier.IsValid(table))
            {
                errors.Add($"{section}:Tables:{table} does not name a table: expected 1 to {SqlIdentifier.MaxLength} characters matching ^[A-Za-z_][A-Za-z0-9_]*$.");
            }

            Check($"{section}:Tables:{table}", template);
        }

        return errors;

        void Check(string key, string? template)
        {
            if (string.IsNullOrEmpty(template) || Count(template, KeyPlaceholder) != 1)
            {
                errors.Add($"{key} is '{template}'; a key template must hold {KeyPlaceholder} exactly once (e.g. '{DefaultTemplate}').");
            }
        }
    }

    private (string Prefix, string Suffix) Parts(string table) => _parts.GetOrAdd(table, static (name, layout) =>
    {
        var template = layout.TemplateFor(name).Replace(TablePlaceholder, name, StringComparison.Ordinal);
        var at = template.IndexOf(KeyPlaceholder, StringComparison.Ordinal);
        if (at < 0)
        {
            throw new InvalidOperationException($"The Redis key template of table '{name}' has no {KeyPlaceholder}.");
        }

        return (template[..at], template[(at + KeyPlaceholder.Length)..]);
    }, this);

    private static int Count(string text, string part)
    {
        var count = 0;
        for (var at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + part.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>Escapes the glob characters of Redis's pattern syntax.</summary>
    private static string Escape(string literal)
    {
        var escaped = new StringBuilder(literal.Length);
        foreach (var c in literal)
        {
            if (c is '*' or '?' or '[' or ']' or '\\')
            {
                escaped.Append('\\');
            }

            escaped.Append(c);
        }

        return escaped.ToString();
    }
}
