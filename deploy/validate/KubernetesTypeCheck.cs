using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json.Serialization;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace MultiHeadServe.ManifestValidation;

/// <summary>
/// Checks a YAML node against a KubernetesClient model type (generated from the Kubernetes OpenAPI spec), field
/// by field, as the API server's strict field validation (kubectl's default) would: every key must be one of the
/// type's JSON property names, and every value of the type the field has. Deserialising into the model would drop
/// a misspelt field without a word; walking the YAML beside the type names it.
/// </summary>
internal static class KubernetesTypeCheck
{
    private static readonly ConcurrentDictionary<Type, IReadOnlyDictionary<string, Type>> FieldsByType = new();

    /// <summary>The manifest kinds KubernetesClient has models for, keyed by "apiVersion/kind".</summary>
    public static readonly IReadOnlyDictionary<string, Type> Kinds = typeof(V1Pod).Assembly.GetTypes()
        .Select(type => (type, entity: type.GetCustomAttribute<KubernetesEntityAttribute>()))
        .Where(pair => pair.entity is not null && !pair.entity.Kind.EndsWith("List", StringComparison.Ordinal))
        .GroupBy(pair => $"{(pair.entity!.Group.Length == 0 ? "" : pair.entity.Group + "/")}{pair.entity.ApiVersion}/{pair.entity.Kind}")
        .ToDictionary(group => group.Key, group => group.First().type);

    /// <summary>
    /// Checks <paramref name="node"/> as a <paramref name="type"/>; calls <paramref name="report"/> (path, message, node)
    /// once per problem. <paramref name="typeLabel"/> names the top-level type in messages, when it is more than the type.
    /// </summary>
    public static void Check(YamlNode node, Type type, string path, Action<string, string, YamlNode> report, string? typeLabel = null)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;

        if (node is YamlScalarNode scalar && YamlValues.KindOf(scalar) == ScalarKind.Null)
        {
            return; // null is "unset" for every field
        }

        if (type == typeof(object))
        {
            return; // free-form JSON (e.g. a CRD's schema)
        }

        if (type == typeof(IntOrString))
        {
            ExpectScalar(node, path, report, "an integer or a string", ScalarKind.Integer, ScalarKind.String);
            return;
        }

        if (type == typeof(ResourceQuantity))
        {
            if (ExpectScalar(node, path, report, "a quantity (such as 500m, 2 or 1Gi)", ScalarKind.Integer, ScalarKind.Number, ScalarKind.String))
            {
                CheckQuantity((YamlScalarNode)node, path, report);
            }

            return;
        }

        if (type == typeof(string) || type == typeof(byte[]) || type == typeof(DateTime) || type == typeof(DateTimeOffset))
        {
            ExpectScalar(node, path, report, "a string", ScalarKind.String);
            return;
        }

        if (type == typeof(bool))
        {
            ExpectScalar(node, path, report, "a boolean", ScalarKind.Boolean);
            return;
        }

        if (type == typeof(int) || type == typeof(long))
        {
            if (ExpectScalar(node, path, report, "an integer", ScalarKind.Integer)
                && type == typeof(int) && !int.TryParse(((YamlScalarNode)node).Value, out _))
            {
                report(path, "must be a 32-bit integer", node);
            }

            return;
        }

        if (type == typeof(double) || type == typeof(float) || type == typeof(decimal))
        {
            ExpectScalar(node, path, report, "a number", ScalarKind.Integer, ScalarKind.Number);
            return;
        }

        if (DictionaryValueType(type) is { } valueType)
        {
            if (node is not YamlMappingNode map)
            {
                report(path, $"must be a map, not {Describe(node)}", node);
                return;
            }

            foreach (var (key, value) in map.Children)
            {
                Check(value, valueType, $"{path}.{((YamlScalarNode)key).Value}", report);
            }

            return;
        }

        if (ListItemType(type) is { } itemType)
        {
            if (node is not YamlSequenceNode list)
            {
                report(path, $"must be a list, not {Describe(node)}", node);
                return;
            }

            for (var i = 0; i < list.Children.Count; i++)
            {
                Check(list.Children[i], itemType, $"{path}[{i}]", report);
            }

            return;
        }

        if (node is not YamlMappingNode mapping)
        {
            report(path, $"must be an object ({type.Name}), not {Describe(node)}", node);
            return;
        }

        var fields = FieldsOf(type);
        foreach (var (keyNode, value) in mapping.Children)
        {
            var key = ((YamlScalarNode)keyNode).Value ?? "";
            var fieldPath = path.Length == 0 ? key : $"{path}.{key}";
            if (fields.TryGetValue(key, out var fieldType))
            {
                Check(value, fieldType, fieldPath, report);
            }
            else
            {
                var near = fields.Keys.Where(name => Distance(name, key) <= 2).OrderBy(name => Distance(name, key)).FirstOrDefault();
                report(fieldPath, $"unknown field \"{key}\" ({typeLabel ?? TypeName(type)} has no such field{(near is null ? "" : $"; did you mean \"{near}\"?")})", keyNode);
            }
        }
    }

    /// <summary>The JSON property names of a model type, each with its .NET type.</summary>
    public static IReadOnlyDictionary<string, Type> FieldsOf(Type type) => FieldsByType.GetOrAdd(type, static t => t
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Select(property => (name: property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name, property.PropertyType))
        .Where(field => field.name is not null)
        .ToDictionary(field => field.name!, field => field.PropertyType));

    private static bool ExpectScalar(YamlNode node, string path, Action<string, string, YamlNode> report, string expected, params ScalarKind[] kinds)
    {
        if (node is YamlScalarNode scalar && kinds.Contains(YamlValues.KindOf(scalar)))
        {
            return true;
        }

        report(path, $"must be {expected}, not {Describe(node)}", node);
        return false;
    }

    private static void CheckQuantity(YamlScalarNode node, string path, Action<string, string, YamlNode> report)
    {
        try
        {
            _ = new ResourceQuantity(node.Value).ToDecimal();
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            report(path, $"\"{node.Value}\" is not a quantity (such as 500m, 2 or 1Gi)", node);
        }
    }

    private static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a map",
        YamlSequenceNode => "a list",
        YamlScalarNode scalar => YamlValues.KindOf(scalar) switch
        {
            ScalarKind.String => $"the string \"{scalar.Value}\"",
            ScalarKind.Boolean => $"the boolean {scalar.Value}",
            _ => $"the number {scalar.Value}",
        },
        _ => node.NodeType.ToString(),
    };

    private static Type? DictionaryValueType(Type type) => GenericArgument(type, typeof(IDictionary<,>), 1);

    private static Type? ListItemType(Type type) => type == typeof(string) ? null : GenericArgument(type, typeof(IList<>), 0);

    private static Type? GenericArgument(Type type, Type generic, int index) =>
        (type.IsGenericType && type.GetGenericTypeDefinition() == generic ? type : null)?.GetGenericArguments()[index]
        ?? type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == generic)?.GetGenericArguments()[index];

    private static string TypeName(Type type) =>
        type.GetCustomAttribute<KubernetesEntityAttribute>()?.Kind ?? (type.Name.StartsWith('V') && char.IsDigit(type.Name[1]) ? type.Name[2..] : type.Name);

    private static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var diagonal = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1));
                diagonal = above;
            }
        }

        return row[b.Length];
    }
}
