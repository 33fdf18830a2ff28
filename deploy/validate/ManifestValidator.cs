using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using k8s.Models;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace MultiHeadServe.ManifestValidation;

/// <summary>
/// Checks Kubernetes manifests against the schemas of their kinds, as the API server would before storing them,
/// unknown fields included (the API server rejects them under strict field validation, kubectl's default; a
/// misspelt field would otherwise pass silently):
/// <list type="bullet">
/// <item>built-in kinds (Deployment, Service, ...) against KubernetesClient's models, which are generated from the
/// Kubernetes OpenAPI spec: field names, and the type of every value;</item>
/// <item>custom resources against the JSON Schemas in deploy/schema (<c>*.schema.json</c>, each naming its
/// apiVersion and kind with <c>const</c>), their metadata as an ObjectMeta, and the pod-spec part of an
/// InferenceService's predictor, transformer or explainer as a PodSpec.</item>
/// </list>
/// A kind with no schema is a problem, so a new kind of manifest cannot go unchecked. Thread-safe once built.
/// </summary>
public sealed class ManifestValidator
{
    private const string InferenceService = "serving.kserve.io/v1beta1/InferenceService";

    private readonly Dictionary<string, JsonSchema> _schemas = [];
    private readonly HashSet<string> _kserveComponentFields = [];

    /// <summary>Loads every <c>*.schema.json</c> of <paramref name="schemaDirectory"/>.</summary>
    public ManifestValidator(string schemaDirectory)
    {
        foreach (var file in Directory.GetFiles(schemaDirectory, "*.schema.json").Order(StringComparer.Ordinal))
        {
            var text = File.ReadAllText(file);
            var root = JsonNode.Parse(text)!;
            var apiVersion = root["properties"]?["apiVersion"]?["const"]?.GetValue<string>();
            var kind = root["properties"]?["kind"]?["const"]?.GetValue<string>();
            if (apiVersion is null || kind is null)
            {
                throw new InvalidDataException($"{file}: a manifest schema names its apiVersion and kind with const");
            }

            // A registry per schema: schemas have no $id, and the default registry is shared.
            _schemas[$"{apiVersion}/{kind}"] = JsonSchema.FromText(text, new BuildOptions { SchemaRegistry = new SchemaRegistry() });
            if ($"{apiVersion}/{kind}" == InferenceService)
            {
                // KServe's own fields of a component; the rest of it is an inlined PodSpec.
                _kserveComponentFields.UnionWith(root["$defs"]!["component"]!["properties"]!.AsObject().Select(field => field.Key));
            }
        }
    }

    /// <summary>The schema folder beside the program (deploy/schema, copied at build).</summary>
    public static string DefaultSchemaDirectory => Path.Combine(AppContext.BaseDirectory, "schema");

    /// <summary>Checks every document of a YAML stream; <paramref name="source"/> names it in the problems.</summary>
    public IReadOnlyList<ManifestProblem> Validate(string yaml, string source, out int manifests)
    {
        var problems = new List<ManifestProblem>();
        manifests = 0;
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            problems.Add(new ManifestProblem(source, "?", "?", "", $"not YAML: {e.Message}", e.Start.Line));
            return problems;
        }

        foreach (var document in stream.Documents)
        {
            if (document.RootNode is YamlScalarNode empty && YamlValues.KindOf(empty) == ScalarKind.Null)
            {
                continue;
            }

            manifests++;
            ValidateDocument(document.RootNode, source, problems);
        }

        return problems;
    }

    private void ValidateDocument(YamlNode root, string source, List<ManifestProblem> problems)
    {
        var mapping = root as YamlMappingNode;
        var apiVersion = Scalar(mapping, "apiVersion");
        var kind = Scalar(mapping, "kind");
        var name = Scalar(Child(mapping, "metadata") as YamlMappingNode, "name") ?? "?";
        void Report(string path, string message, YamlNode at) =>
            problems.Add(new ManifestProblem(source, kind ?? "?", name, path, message, at.Start.Line));

        if (mapping is null || apiVersion is null || kind is null)
        {
            Report("", "a manifest is a map with apiVersion and kind", root);
            return;
        }

        var key = $"{apiVersion}/{kind}";
        if (KubernetesTypeCheck.Kinds.TryGetValue(key, out var type))
        {
            KubernetesTypeCheck.Check(root, type, "", Report);
            if (name == "?")
            {
                Report("metadata.name", "is required", root);
            }

            return;
        }

        if (!_schemas.TryGetValue(key, out var schema))
        {
            Report("", $"no schema for {apiVersion} {kind}: add one to deploy/schema", root);
            return;
        }

        CheckSchema(schema, root, Report);
        if (Child(mapping, "metadata") is { } metadata)
        {
            KubernetesTypeCheck.Check(metadata, typeof(V1ObjectMeta), "metadata", Report);
        }

        if (key == InferenceService && Child(mapping, "spec") is YamlMappingNode spec)
        {
            foreach (var component in new[] { "predictor", "transformer", "explainer" })
            {
                if (Child(spec, component) is YamlMappingNode part)
                {
                    // The inlined PodSpec: the component without KServe's own fields.
                    var podSpec = new YamlMappingNode(part.Children.Where(field => !_kserveComponentFields.Contains(((YamlScalarNode)field.Key).Value ?? "")));
                    KubernetesTypeCheck.Check(podSpec, typeof(V1PodSpec), $"spec.{component}", Report, "neither KServe's component nor a PodSpec");
                }
            }
        }
    }

    private static void CheckSchema(JsonSchema schema, YamlNode root, Action<string, string, YamlNode> report)
    {
        using var json = JsonDocument.Parse(YamlValues.ToJson(root)!.ToJsonString());
        var results = schema.Evaluate(json.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (results.IsValid)
        {
            return;
        }

        foreach (var detail in results.Details ?? [])
        {
            if (detail.IsValid || detail.Errors is null || detail.Errors.Count == 0)
            {
                continue;
            }

            // Errors inside the alternatives of a oneOf/anyOf/not are reported by that keyword, once.
            var evaluationPath = detail.EvaluationPath.ToString();
            var keywords = evaluationPath.Split('/');
            var inAlternative = keywords.Take(keywords.Length - 1).Any(k => k is "oneOf" or "anyOf" or "not");
            if (inAlternative)
            {
                continue;
            }

            var segments = detail.InstanceLocation.ToString().Split('/', StringSplitOptions.RemoveEmptyEntries)
                .Select(s => s.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToArray();
            var node = Locate(root, segments);
            var path = string.Concat(segments.Select((s, i) => int.TryParse(s, out _) ? $"[{s}]" : (i == 0 ? s : "." + s)));
            if (evaluationPath.EndsWith("/additionalProperties", StringComparison.Ordinal) && segments.Length > 0)
            {
                report(path, $"unknown field \"{segments[^1]}\" (not in the schema of this kind)", node);
                continue;
            }

            foreach (var (keyword, message) in detail.Errors)
            {
                var value = node is YamlScalarNode scalar && segments.Length > 0 ? $" (the value: {scalar.Value})" : "";
                report(path, keyword == "oneOf" ? "needs exactly one model server, or containers of its own" : message + value, node);
            }
        }
    }

    private static YamlNode Locate(YamlNode root, IEnumerable<string> segments)
    {
        var node = root;
        foreach (var segment in segments)
        {
            YamlNode? next = node switch
            {
                YamlMappingNode mapping => Child(mapping, segment),
                YamlSequenceNode sequence when int.TryParse(segment, out var i) && i < sequence.Children.Count => sequence.Children[i],
                _ => null,
            };
            if (next is null)
            {
                break;
            }

            node = next;
        }

        return node;
    }

    private static YamlNode? Child(YamlMappingNode? mapping, string key) =>
        mapping is not null && mapping.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    private static string? Scalar(YamlMappingNode? mapping, string key) => (Child(mapping, key) as YamlScalarNode)?.Value;
}
