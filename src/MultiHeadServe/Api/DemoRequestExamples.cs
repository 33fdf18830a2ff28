using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiHeadServe.Api;

/// <summary>
/// Gives every feature-carrying operation a working example body per served model, so "Try it out" in the
/// explorer works as it opens: the first row of the model's reference.json when it has one (a real image,
/// real entity keys), otherwise zeros of the right shape. The {model} parameter lists the served models.
/// Operations that take image uploads also document the raw image types and the multipart form, whose
/// file fields the explorer turns into file pickers. Evaluate's examples carry labels for the same row; each
/// example names its model in <c>x-model</c> so a client (or a test) can pick the matching {model}.
/// </summary>
public sealed class DemoRequestExamples(ModelRegistry registry) : IOperationFilter
{
    /// <summary>The extension on each example naming the model it is for.</summary>
    public const string ModelExtension = "x-model";

    // Built for the models served now; built again when they change (a model loaded, reloaded or unloaded).
    private Examples? _examples;

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var body = context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<Features.JsonBodyMetadata>().FirstOrDefault();
        if (body is null)
        {
            return;
        }

        // Handlers that read their model from the fetched features do not bind {model}; describe it anyway.
        operation.Parameters ??= [];
        foreach (var name in RouteParameters(context.ApiDescription.RelativePath))
        {
            if (!operation.Parameters.Any(p => p.Name == name))
            {
                operation.Parameters.Add(new OpenApiParameter
                {
                    Name = name,
                    In = ParameterLocation.Path,
                    Required = true,
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String },
                });
            }
        }

        foreach (var parameter in operation.Parameters.OfType<OpenApiParameter>())
        {
            if (parameter.Name == "model" && parameter.Schema is OpenApiSchema schema)
            {
                schema.Enum = registry.All.Select(m => (JsonNode)JsonValue.Create(m.Name)!).ToList();
                parameter.Example = JsonValue.Create(registry.All.Select(m => m.Name).Order(StringComparer.Ordinal).FirstOrDefault());
                parameter.Description = "A served model (GET /v1/models lists them). Pick the example body for the same model.";
            }

            if (parameter.Name == "head" && parameter.Schema is OpenApiSchema headSchema)
            {
                var heads = registry.All.OrderBy(m => m.Name, StringComparer.Ordinal).SelectMany(m => m.ServedHeads.Select(h => (Model: m.Name, Head: h.Name))).ToList();
                headSchema.Enum = heads.Select(h => h.Head).Distinct(StringComparer.Ordinal).Select(h => (JsonNode)JsonValue.Create(h)!).ToList();
                parameter.Example = JsonValue.Create(heads.Select(h => h.Head).FirstOrDefault());
                parameter.Description = "A served head of the model: " +
                    string.Join("; ", heads.GroupBy(h => h.Model).Select(g => $"{g.Key}: {string.Join(", ", g.Select(h => h.Head))}")) + ".";
            }
        }

        // The feature-fetch middleware reads ?heads= itself (no handler binds it): describe it on the routes that take it.
        if (body is Features.FeatureFetchMetadata && !(context.ApiDescription.RelativePath ?? "").Contains("{head}", StringComparison.Ordinal) &&
            !operation.Parameters.Any(p => p.Name == "heads"))
        {
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = "heads",
                In = ParameterLocation.Query,
                Description = "Comma-separated heads to answer (for evaluate: to score, in α order); every served head when absent. " +
                    "A body's \"heads\" must name the same ones. Image uploads take their heads from here only.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            });
        }

        var media = new OpenApiMediaType
        {
            Schema = context.SchemaGenerator.GenerateSchema(body.BodyType, context.SchemaRepository),
            Examples = new Dictionary<string, IOpenApiExample>(),
        };
        var requestBody = new OpenApiRequestBody
        {
            Required = true,
            Description = body is Features.FeatureFetchMetadata
                ? "One row, or several under \"instances\". Read once by the feature-fetch middleware."
                : "The request body (JSON).",
            Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = media },
        };
        operation.RequestBody = requestBody;
        if (body is not Features.FeatureFetchMetadata)
        {
            return;
        }

        var current = Current();
        var examples = body.BodyType == typeof(EvaluateRequest) ? current.Evaluate : current.Predict;
        foreach (var example in examples)
        {
            media.Examples![example.Name] = example.ToOpenApi();
        }

        if (context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<Features.ImageUploadMetadata>().Any())
        {
            DescribeUploads(requestBody);
        }
    }

    /// <summary>The image models' other bodies: the file itself (one row) and a form of files (one row each, in order).</summary>
    private static void DescribeUploads(OpenApiRequestBody requestBody)
    {
        requestBody.Description += " Image models also take the image itself (image/png, image/jpeg, image/webp) or " +
            "multipart/form-data with one or more files under 'image' (one row each, in order). " +
            "For example: curl --data-binary @models/shapes/samples/triangle.png -H 'content-type: image/png' …/v1/models/shapes/predict, or " +
            "curl -F image=@models/shapes/samples/triangle.png -F image=@models/shapes/samples/circle.png …/v1/models/shapes/predict.";
        foreach (var format in Features.Images.EncodedImageFormat.All)
        {
            requestBody.Content![format.MediaType] = new OpenApiMediaType
            {
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = $"A {format.Name} file: one row." },
            };
        }

        requestBody.Content![Features.ImageUploads.Multipart] = new OpenApiMediaType
        {
            Schema = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Required = new HashSet<string> { "image" },
                Properties = new Dictionary<string, IOpenApiSchema>
                {
                    ["image"] = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Array,
                        Description = "One or more PNG, JPEG or WebP files; each is one row, answered in order under \"predictions\".",
                        Items = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" },
                    },
                },
            },
            Encoding = new Dictionary<string, OpenApiEncoding>
            {
                ["image"] = new OpenApiEncoding { ContentType = "image/png, image/jpeg, image/webp" },
            },
        };
    }

    private static IEnumerable<string> RouteParameters(string? template) =>
        System.Text.RegularExpressions.Regex.Matches(template ?? "", @"\{([A-Za-z_][A-Za-z0-9_]*)\}").Select(m => m.Groups[1].Value);

    /// <summary>The examples of the models served now.</summary>
    private Examples Current()
    {
        var generation = registry.Generation;
        var examples = Volatile.Read(ref _examples);
        if (examples is null || examples.Generation != generation)
        {
            var predict = Build(registry);
            examples = new Examples(generation, predict, BuildEvaluate(registry, predict));
            Volatile.Write(ref _examples, examples);
        }

        return examples;
    }

    /// <summary>
    /// The most base64 text an image example carries as it is. Swagger UI highlights every example it shows: a
    /// 160 KB one takes it seconds, and the explorer is for trying things, so a larger image is shown as a JPEG.
    /// </summary>
    internal const int MaxImageExampleChars = 32 * 1024;

    /// <summary>A reference image as an example carries it, and its format's name: as it is when small, otherwise as a JPEG of quality 90 (same size in pixels).</summary>
    internal static (string Base64, string Format) ExplorerImage(string base64)
    {
        byte[] encoded;
        try
        {
            encoded = Convert.FromBase64String(base64);
        }
        catch (FormatException)
        {
            // Not plain base64 (a data URL, say): shown as the reference has it.
            return (base64, "encoded");
        }

        var format = Features.Images.EncodedImageFormat.Detect(encoded)?.Name ?? "encoded";
        if (base64.Length <= MaxImageExampleChars)
        {
            return (base64, format);
        }

        try
        {
            using var image = Features.Images.ImageDecoder.Decode(encoded, Features.Images.ImageDecodeLimits.Default);
            var jpeg = Convert.ToBase64String(Features.Images.SkiaImageCodec.EncodeJpeg(image, quality: 90));
            return jpeg.Length < base64.Length ? (jpeg, "JPEG") : (base64, format);
        }
        catch (Features.Images.ImageDecodeException)
        {
            // Not an image the service reads: the example shows it as the reference has it (and its answer says why).
            return (base64, format);
        }
    }

    /// <summary>Each served model's predict bodies: its first reference row as an image, entity keys, three instances or inline features.</summary>
    internal static List<DemoExample> Build(ModelRegistry registry)
    {
        var examples = new List<DemoExample>();
        foreach (var model in registry.All.OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            var reference = ReadReference(model);
            var features = model.Manifest.Features;
            if (features.Source == FeatureSource.Image)
            {
                var image = reference?["images"]?[0]?.GetValue<string>();
                if (image is not null)
                {
                    var (text, format) = ExplorerImage(image);
                    examples.Add(new($"{model.Name}-image", $"{model.Name}: one {format} image (model = {model.Name})", model.Name, new JsonObject { ["image"] = text }));
                }

                continue;
            }

            if (reference?["entities"]?[0] is JsonObject keys)
            {
                examples.Add(new($"{model.Name}-keys", $"{model.Name}: entity keys, features from the store (model = {model.Name})", model.Name, keys.DeepClone()));
                if (reference["entities"] is JsonArray all && all.Count >= 3)
                {
                    examples.Add(new($"{model.Name}-instances", $"{model.Name}: three rows in one run (model = {model.Name})", model.Name,
                        new JsonObject { ["instances"] = new JsonArray(all[0]!.DeepClone(), all[1]!.DeepClone(), all[2]!.DeepClone()) }));
                }
            }

            var values = reference?["inputs"]?[features.Input]?["data"] is JsonArray data
                ? data.Take(features.Columns!.Count).Select(v => v!.GetValue<double>()).ToArray()
                : new double[features.Columns!.Count];
            var named = new JsonObject();
            for (var i = 0; i < features.Columns.Count; i++)
            {
                named[features.Columns[i]] = values[i];
            }

            examples.Add(new($"{model.Name}-inline", $"{model.Name}: inline named features (model = {model.Name})", model.Name, new JsonObject { ["features"] = named }));
        }

        return examples;
    }

    /// <summary>
    /// Each served model's evaluate body: the first row of its predict example with labels for every head that can be
    /// scored (from the reference: the true class and box of an image; for tabular heads the reference run's own
    /// outputs, a binary head's as the decision), and for two or more heads α weighting the first two.
    /// </summary>
    internal static List<DemoExample> BuildEvaluate(ModelRegistry registry, IReadOnlyList<DemoExample> predict)
    {
        var examples = new List<DemoExample>();
        foreach (var row in predict.GroupBy(e => e.Model).Select(g => g.First()))
        {
            var model = registry.All.First(m => m.Name == row.Model);
            var reference = ReadReference(model);
            var labels = new JsonObject();
            foreach (var head in model.Manifest.Heads)
            {
                if (Label(model, head, reference) is { } label)
                {
                    labels[head.Name] = new JsonArray(label);
                }
            }

            if (labels.Count == 0)
            {
                continue;
            }

            var body = (JsonObject)row.Body.DeepClone();
            body["labels"] = labels;
            var summary = $"{model.Name}: labels for every head, summed (model = {model.Name})";
            if (labels.Count >= 2)
            {
                var two = labels.Select(l => l.Key).Take(2).ToList();
                body["heads"] = new JsonArray(JsonValue.Create(two[0]), JsonValue.Create(two[1]));
                body["alpha"] = 0.5;
                foreach (var other in labels.Select(l => l.Key).Skip(2).ToList())
                {
                    labels.Remove(other);
                }

                summary = $"{model.Name}: L = α·L_{two[0]} + (1 − α)·L_{two[1]}, α = 0.5 (model = {model.Name})";
            }

            examples.Add(new($"{model.Name}-evaluate", summary, model.Name, body));
        }

        return examples;
    }

    /// <summary>One row's label for a head, or null when the reference gives none.</summary>
    private static JsonNode? Label(LoadedModel model, HeadSpec head, JsonNode? reference)
    {
        if (head.Kind == HeadKind.Classification)
        {
            return reference?["labels"]?[0]?.GetValue<string>() is { } name ? JsonValue.Create(name)
                : model.Labels.TryGetValue(head.Name, out var names) && names.Count > 0 ? JsonValue.Create(names[0]) : null;
        }

        if (head.Kind == HeadKind.BoundingBox && reference?["boxes"]?["data"] is JsonArray boxes && boxes.Count >= 4)
        {
            return new JsonArray([.. boxes.Take(4).Select(v => (JsonNode?)JsonValue.Create(v!.GetValue<double>()))]);
        }

        if (reference?["outputs"]?[head.Output] is not JsonObject output || output["data"] is not JsonArray data || output["shape"] is not JsonArray shape)
        {
            return null;
        }

        var width = shape.Count > 1 ? shape.Skip(1).Aggregate(1, (a, d) => a * d!.GetValue<int>()) : 1;
        var values = data.Take(width).Select(v => v!.GetValue<double>()).ToArray();
        return head.Kind switch
        {
            HeadKind.Binary => JsonValue.Create(values[0] >= 0 ? 1 : 0),
            HeadKind.Regression when width == 1 => JsonValue.Create(values[0]),
            HeadKind.Regression => new JsonArray([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]),
            HeadKind.Multilabel => new JsonArray([.. values.Select(v => (JsonNode?)JsonValue.Create(v >= 0 ? 1 : 0))]),
            _ => null,
        };
    }

    internal static JsonNode? ReadReference(LoadedModel model)
    {
        var path = Path.Combine(model.Directory, model.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), "reference.json");
        try
        {
            return File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record Examples(long Generation, IReadOnlyList<DemoExample> Predict, IReadOnlyList<DemoExample> Evaluate);
}

/// <summary>A named example body for one model.</summary>
internal sealed record DemoExample(string Name, string Summary, string Model, JsonNode Body)
{
    public OpenApiExample ToOpenApi() => new()
    {
        Summary = Summary,
        Value = Body.DeepClone(),
        Extensions = Model.Length == 0 ? null : new Dictionary<string, IOpenApiExtension> { [DemoRequestExamples.ModelExtension] = new JsonNodeExtension(JsonValue.Create(Model)) },
    };
}
