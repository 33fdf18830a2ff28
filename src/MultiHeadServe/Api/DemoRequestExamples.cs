using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using MultiHeadServe.Models;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiHeadServe.Api;

/// <summary>
/// Gives every feature-carrying operation a working example body per served model, so "Try it out" in the
/// explorer works as it opens: the first row of the model's reference.json when it has one (a real image,
/// real entity keys), otherwise zeros of the right shape. The {model} parameter lists the served models.
/// Operations that take image uploads also document the raw image types and the multipart form, whose
/// file fields the explorer turns into file pickers.
/// </summary>
public sealed class DemoRequestExamples(ModelRegistry registry) : IOperationFilter
{
    private readonly Lazy<IReadOnlyList<(string Name, string Summary, JsonNode Body)>> _examples = new(() => Build(registry));

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

        foreach (var (name, summary, example) in _examples.Value)
        {
            media.Examples![name] = new OpenApiExample { Summary = summary, Value = example.DeepClone() };
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

    private static List<(string Name, string Summary, JsonNode Body)> Build(ModelRegistry registry)
    {
        var examples = new List<(string, string, JsonNode)>();
        foreach (var model in registry.All.OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            var reference = ReadReference(model);
            var features = model.Manifest.Features;
            if (features.Source == "image")
            {
                var image = reference?["images"]?[0]?.GetValue<string>();
                if (image is not null)
                {
                    examples.Add(($"{model.Name}-image", $"{model.Name}: one PNG image (model = {model.Name})", new JsonObject { ["image"] = image }));
                }

                continue;
            }

            if (reference?["entities"]?[0] is JsonObject keys)
            {
                examples.Add(($"{model.Name}-keys", $"{model.Name}: entity keys, features from the store (model = {model.Name})", keys.DeepClone()));
                if (reference["entities"] is JsonArray all && all.Count >= 3)
                {
                    examples.Add(($"{model.Name}-instances", $"{model.Name}: three rows in one run (model = {model.Name})",
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

            examples.Add(($"{model.Name}-inline", $"{model.Name}: inline named features (model = {model.Name})", new JsonObject { ["features"] = named }));
        }

        return examples;
    }

    private static JsonNode? ReadReference(LoadedModel model)
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
}
