using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace MultiHeadServe.ManifestValidation;

/// <summary>What a YAML scalar is under the YAML 1.2 core schema, the way the Kubernetes API reads a manifest.</summary>
internal enum ScalarKind
{
    Null,
    Boolean,
    Integer,
    Number,
    String,
}

/// <summary>
/// Reads YAML nodes as the JSON values the Kubernetes API server sees: an unquoted <c>5</c> is a number and
/// an unquoted <c>true</c> a boolean, so a field typed string that is given either is wrong, as kubectl says.
/// </summary>
internal static partial class YamlValues
{
    public static ScalarKind KindOf(YamlScalarNode scalar)
    {
        if (scalar.Style != YamlDotNet.Core.ScalarStyle.Plain)
        {
            return ScalarKind.String;
        }

        var text = scalar.Value ?? "";
        if (text is "" or "~" or "null" or "Null" or "NULL")
        {
            return ScalarKind.Null;
        }

        if (text is "true" or "True" or "TRUE" or "false" or "False" or "FALSE")
        {
            return ScalarKind.Boolean;
        }

        if (IntegerPattern().IsMatch(text))
        {
            return ScalarKind.Integer;
        }

        return FloatPattern().IsMatch(text) ? ScalarKind.Number : ScalarKind.String;
    }

    /// <summary>The node as JSON, for the JSON Schema checks.</summary>
    public static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode mapping => new JsonObject(mapping.Children.Select(pair =>
            KeyValuePair.Create(((YamlScalarNode)pair.Key).Value ?? "", ToJson(pair.Value)))),
        YamlSequenceNode sequence => new JsonArray(sequence.Children.Select(ToJson).ToArray()),
        YamlScalarNode scalar => KindOf(scalar) switch
        {
            ScalarKind.Null => null,
            ScalarKind.Boolean => JsonValue.Create(scalar.Value!.Equals("true", StringComparison.OrdinalIgnoreCase)),
            ScalarKind.Integer => JsonValue.Create(ParseInteger(scalar.Value!)),
            ScalarKind.Number => JsonValue.Create(double.Parse(scalar.Value!, CultureInfo.InvariantCulture)),
            _ => JsonValue.Create(scalar.Value ?? ""),
        },
        _ => throw new InvalidOperationException($"unexpected YAML node {node.NodeType} at {node.Start}"),
    };

    private static long ParseInteger(string text) =>
        text.StartsWith("0x", StringComparison.Ordinal) ? Convert.ToInt64(text[2..], 16)
        : text.StartsWith("0o", StringComparison.Ordinal) ? Convert.ToInt64(text[2..], 8)
        : long.Parse(text, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^([-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")]
    private static partial Regex FloatPattern();
}
