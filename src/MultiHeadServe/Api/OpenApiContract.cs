using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.OpenApi;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiHeadServe.Api;

/// <summary>
/// Makes the generated document say what the service really sends and accepts, so generated clients and schema
/// validators take its real traffic: head results are one schema per kind under a <c>kind</c> discriminator (no empty
/// base, no null branch); request bodies accept entity keys beside the documented members; problems carry
/// <c>field</c> and <c>traceId</c>; 429 and 503 carry <c>Retry-After</c>; every operation has a summary, every
/// tag a description, the API-key scheme applies when keys are configured and health and metrics stay open.
/// The changes sit here rather than on each endpoint so endpoint code keeps to behaviour.
/// </summary>
public sealed class OpenApiContract(bool keysConfigured, bool protectOperationalEndpoints) : IDocumentFilter
{
    internal const string HeadResultSchema = nameof(HeadResult);
    internal const string ProblemSchema = "ProblemDetails";
    private const string ApiKeyScheme = "ApiKey";
    internal const string NotFoundDescription = "No model of that name (or no such version or head) is served.";

    /// <summary>Each head kind, in <see cref="HeadKind"/>'s order, and the schema (the record) its results' discriminator names.</summary>
    internal static readonly IReadOnlyList<(string Kind, string Schema)> HeadKindSchemas =
    [
        .. Enum.GetValues<HeadKind>().Select(kind => (kind.ManifestName(), typeof(HeadResult).GetCustomAttributes(typeof(JsonDerivedTypeAttribute), false)
            .Cast<JsonDerivedTypeAttribute>().Single(derived => Equals(derived.TypeDiscriminator, kind.ManifestName())).DerivedType.Name)),
    ];

    /// <summary>Summaries for operations whose endpoints do not carry one.</summary>
    private static readonly Dictionary<string, string> Summaries = new(StringComparer.Ordinal)
    {
        ["V2Live"] = "The server is live (Open Inference Protocol).",
        ["V2Ready"] = "Every model is loaded and warm (else 503).",
        ["V2ModelVersionMetadata"] = "Inputs and outputs of one version as tensors.",
        ["V2InferVersion"] = "Runs one version of the model on the input tensor; returns output tensors.",
        ["V2ModelVersionReady"] = "One version of the model is ready (Open Inference Protocol).",
        ["PredictVersion"] = "Every served head of one served version of the model, from one fetch and one run.",
        ["PredictHeadVersion"] = "One head of one served version of the model.",
        ["EvaluateVersion"] = "Per-head losses and the combined loss for one served version of the model.",
        ["V2RepositoryIndex"] = "Every model in the repository, with each version's state and the reason a version is unavailable.",
        ["V2RepositoryLoad"] = "Loads (or reloads) a model from the repository without a restart.",
        ["V2RepositoryUnload"] = "Stops serving a model; requests already admitted finish first.",
    };

    /// <summary>Descriptions for operations whose endpoints carry only a summary.</summary>
    private static readonly Dictionary<string, string> Descriptions = new(StringComparer.Ordinal)
    {
        ["Liveness"] = "200 while the process runs; no check is made. For a liveness probe.",
        ["Readiness"] = "Every model loaded and warm: 200 (also when the feature store is down: only the models that read it are unready, listed per model); else 503. For a readiness probe.",
        ["Metrics"] = "Requests, feature fetches, queue and run times, batch sizes and head losses in Prometheus' text format (OpenTelemetry).",
        ["ListModels"] = "Each served model: version, versions on disk, execution provider, readiness, feature source, the session's real input and output tensors, and every head with its kind and labels.",
        ["GetModel"] = "As in the list, plus the effective manifest (defaults filled in).",
        ["V2ServerMetadata"] = "The Open Inference Protocol's server metadata.",
        ["V2Live"] = "The Open Inference Protocol's liveness: always live while the process runs.",
        ["V2Ready"] = "The Open Inference Protocol's readiness: 200 when every model is loaded and warm, else 503.",
        ["V2ModelMetadata"] = "The model's versions, platform and its input and output tensors (name, datatype, shape; -1 is a dynamic dimension).",
        ["V2ModelVersionReady"] = "200 when that version is served and ready; 400 when its folder is present but it is not served (or its feature store does not answer); 404 for a version the repository does not have.",
        ["PredictVersion"] = "As predict, at the version in the path (the unversioned route serves the highest served version); a version not served is a 404 naming the served ones.",
        ["PredictHeadVersion"] = "As per-head predict, at the version in the path.",
        ["EvaluateVersion"] = "As evaluate, at the version in the path.",
        ["V2RepositoryIndex"] = "The protocol's model repository extension, as Triton serves it: name, version, state (READY or UNAVAILABLE) and reason. Only when API keys are configured.",
        ["V2RepositoryLoad"] = "Reads the manifest, loads, validates and warms each new or changed version, then swaps it in atomically; a bad version leaves the serving one in place and answers 400 with the reason. Only when API keys are configured.",
        ["V2RepositoryUnload"] = "Unloads the model: new requests get 404 naming it, admitted ones finish on their version. Only when API keys are configured.",
        ["V2ModelVersionMetadata"] = "As model metadata, for the version served (another version is a 404).",
        ["V2ModelReady"] = "200 when the model is ready; 400 when not (a store-backed model while the feature store does not answer).",
        ["V2Infer"] = "One FP32 input tensor named as the model's input (FP64 and FP16 are converted), data flat row-major or nested; \"outputs\" picks outputs by name (all when absent); an output's \"parameters\": {\"classification\": n} returns its n highest values per row as BYTES \"value:index:label\" (Triton's classification extension), {\"binary_data\": true} its bytes after the JSON. Runs through the same batcher as /v1.",
        ["V2InferVersion"] = "As infer, for the version served (another version is a 404).",
        ["V2Statistics"] = "Triton's statistics extension: per model version since it was loaded, requests that succeeded and failed (time in the engine), time queued, and the run's input, infer and output phases per request and per batch size; inference_count counts rows, execution_count session runs. Sample twice and divide the differences for averages.",
        ["V2ModelStatistics"] = "As all statistics, for every served version of the model (a model not served is a 404).",
        ["V2ModelVersionStatistics"] = "As all statistics, for one served version (another version is a 404).",
        ["V2ModelConfig"] = "Triton's model configuration extension, derived from the manifest and the session: max_batch_size is the rows one request may carry (Serve:MaxInstances) and dims leave out the batch dimension; dynamic_batching, instance_group and version_policy come from the manifest; the parameters heads and max_batch_rows give the served heads and the batcher's largest run.",
        ["V2ModelVersionConfig"] = "As the model configuration, for one served version (another version is a 404).",
    };

    private static readonly Dictionary<string, string> TagDescriptions = new(StringComparer.Ordinal)
    {
        ["Predict"] = "Every head of a model (or a subset, or one head) from one feature fetch and one run.",
        ["Evaluate"] = "Per-head losses and metrics on labelled rows and the combined multi-task loss.",
        ["Models"] = "What is served: versions, inputs, outputs, heads and the effective manifest.",
        ["Health"] = "Liveness and readiness for orchestrators; open even with API keys unless Security:ProtectOperationalEndpoints.",
        ["Metrics"] = "Prometheus metrics; open even with API keys unless Security:ProtectOperationalEndpoints.",
        ["Open Inference Protocol (v2)"] = "The KServe v2 REST protocol: tensors in, tensors out, through the same batcher.",
        ["Versions"] = "Predict and evaluate at one served version of a model (a manifest's versionPolicy may serve several).",
        ["Model repository (v2)"] = "Load, unload and list the repository's models without a restart (the protocol's repository extension); needs API keys.",
    };

    public void Apply(OpenApiDocument swaggerDoc, DocumentFilterContext context)
    {
        var document = swaggerDoc;
        var schemas = document.Components!.Schemas!;
        DescribeHeadResults(document, schemas);
        DescribeProblems(schemas);
        // Every problem response now refers to ProblemDetails (which carries the validation members too).
        schemas.Remove("HttpValidationProblemDetails");
        OpenRequestBodies(schemas);
        foreach (var schema in schemas.Values.OfType<OpenApiSchema>())
        {
            ReplaceHeadResultUnions(schema, document, depth: 0);
            PlainReferences(schema, depth: 0);
        }

        foreach (var (path, item) in document.Paths)
        {
            foreach (var (method, operation) in item.Operations ?? [])
            {
                DescribeOperation(path, operation, document);
            }
        }

        document.Tags ??= new HashSet<OpenApiTag>();
        foreach (var (name, description) in TagDescriptions)
        {
            if (document.Tags.FirstOrDefault(t => t.Name == name) is { } tag)
            {
                tag.Description = description;
            }
            else if (document.Paths.Values.Any(p => (p.Operations ?? []).Values.Any(o => o.Tags?.Any(t => t.Name == name) == true)))
            {
                document.Tags.Add(new OpenApiTag { Name = name, Description = description });
            }
        }

        // Without keys nothing is required: said explicitly (an empty requirement) rather than left unsaid.
        if (!keysConfigured)
        {
            document.Security = [new OpenApiSecurityRequirement()];
        }
    }

    /// <summary>
    /// <c>HeadResult</c> becomes the base of the six kinds: a required <c>kind</c> and a discriminator mapping each value
    /// to its schema; each kind's schema is the base plus its own required members (no <c>additionalProperties: false</c>
    /// beside <c>allOf</c>, which would refuse the base's <c>kind</c>).
    /// </summary>
    private static void DescribeHeadResults(OpenApiDocument document, IDictionary<string, IOpenApiSchema> schemas)
    {
        var mapping = new Dictionary<string, OpenApiSchemaReference>(StringComparer.Ordinal);
        foreach (var (kind, name) in HeadKindSchemas)
        {
            mapping[kind] = new OpenApiSchemaReference(name, document);
            if (schemas.TryGetValue(name, out var found) && found is OpenApiSchema derived)
            {
                var own = derived.AllOf?.OfType<OpenApiSchema>().FirstOrDefault() ?? derived;
                var members = new OpenApiSchema
                {
                    Type = JsonSchemaType.Object,
                    Properties = own.Properties ?? new Dictionary<string, IOpenApiSchema>(),
                    Required = new HashSet<string>(
                        (own.Properties ?? new Dictionary<string, IOpenApiSchema>()).Where(p => !IsNullable(p.Value)).Select(p => p.Key), StringComparer.Ordinal),
                };
                schemas[name] = new OpenApiSchema
                {
                    Description = derived.Description + $" Answered with \"kind\": \"{kind}\".",
                    AllOf = [new OpenApiSchemaReference(HeadResultSchema, document), members],
                };
            }
        }

        schemas[HeadResultSchema] = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "One head's decoded output. \"kind\" names its shape (classification, multilabel, binary, regression, bbox, embedding); " +
                "the discriminator maps each kind to its schema. Numbers are float32; a result never holds NaN or Infinity.",
            Required = new HashSet<string> { "kind" },
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["kind"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.String,
                    Description = "The head kind, as in the model's manifest.",
                    Enum = [.. HeadKindSchemas.Select(k => (JsonNode)JsonValue.Create(k.Kind)!)],
                },
            },
            Discriminator = new OpenApiDiscriminator { PropertyName = "kind", Mapping = mapping },
        };
    }

    /// <summary>Every place Swashbuckle wrote the kinds as a oneOf (with or without a null branch) refers to the base instead.</summary>
    private static void ReplaceHeadResultUnions(OpenApiSchema schema, OpenApiDocument document, int depth)
    {
        if (depth > 16)
        {
            return;
        }

        if (schema.Properties is { } properties)
        {
            foreach (var name in properties.Keys.ToList())
            {
                properties[name] = Replace(properties[name], document, depth);
            }
        }

        if (schema.Items is { } items)
        {
            schema.Items = Replace(items, document, depth);
        }

        if (schema.AdditionalProperties is { } values)
        {
            schema.AdditionalProperties = Replace(values, document, depth);
        }

        foreach (var part in (schema.AllOf ?? []).OfType<OpenApiSchema>())
        {
            ReplaceHeadResultUnions(part, document, depth + 1);
        }
    }

    private static IOpenApiSchema Replace(IOpenApiSchema schema, OpenApiDocument document, int depth)
    {
        if (schema is not OpenApiSchema inline)
        {
            return schema;
        }

        if (IsHeadResultUnion(inline))
        {
            return new OpenApiSchemaReference(HeadResultSchema, document);
        }

        ReplaceHeadResultUnions(inline, document, depth + 1);
        return inline;
    }

    private static bool IsHeadResultUnion(OpenApiSchema schema) =>
        schema.OneOf is { Count: > 0 } oneOf &&
        oneOf.OfType<OpenApiSchemaReference>().Select(r => r.Reference.Id).ToHashSet().SetEquals(HeadKindSchemas.Select(k => k.Schema));

    /// <summary>
    /// XML comments' cross-references arrive as .NET names (<c>MultiHeadServe.Heads.RegressionResult.Value</c>); a reader
    /// of the document knows the JSON member (<c>`value`</c>) or the type's short name instead.
    /// </summary>
    private static void PlainReferences(OpenApiSchema schema, int depth)
    {
        if (depth > 8)
        {
            return;
        }

        if (schema.Description is { } description && description.Contains("MultiHeadServe.", StringComparison.Ordinal))
        {
            schema.Description = System.Text.RegularExpressions.Regex.Replace(description, @"MultiHeadServe(\.[A-Za-z]+)+", match =>
            {
                var parts = match.Value.Split('.');
                return parts.Length >= 4 ? $"`{char.ToLowerInvariant(parts[^1][0])}{parts[^1][1..]}`" : parts[^1];
            });
        }

        foreach (var part in (schema.Properties?.Values ?? []).Concat(schema.AllOf ?? []).OfType<OpenApiSchema>())
        {
            PlainReferences(part, depth + 1);
        }
    }

    private static bool IsNullable(IOpenApiSchema schema) => schema.Type is { } type && type.HasFlag(JsonSchemaType.Null);

    /// <summary>The problem body every error sends: RFC 7807 plus the field at fault, the trace id, and /v2's <c>error</c>.</summary>
    private static void DescribeProblems(IDictionary<string, IOpenApiSchema> schemas)
    {
        schemas[ProblemSchema] = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "An RFC 7807 problem (application/problem+json). Bad input always gets one with a 4xx status.",
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A URI naming the problem type." },
                ["title"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A short summary of the problem type." },
                ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Description = "The HTTP status." },
                ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "What was wrong with this request, in words." },
                ["instance"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The request's path." },
                ["field"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.String,
                    Description = "The request member at fault, as a JSON path into the body (\"labels.class\", \"instances[2].image\") or the parameter or header name (\"model\", \"heads\", \"Authorization\").",
                },
                ["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The W3C trace id of the request, as in its log line." },
                ["error"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "/v2 only: the Open Inference Protocol's error message (the same as detail)." },
                ["model"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The model named in the request, where it matters." },
            },
        };
    }

    /// <summary>
    /// Rows are open objects: entity keys (<c>{"user_id": "u0001", "item_id": "i0042"}</c>) sit beside or instead of the
    /// documented members, so the request schemas allow other members; <c>features</c> is a vector or named values.
    /// </summary>
    private static void OpenRequestBodies(IDictionary<string, IOpenApiSchema> schemas)
    {
        foreach (var name in new[] { nameof(V2InferRequest), nameof(V2InputTensor), nameof(V2RequestedOutput) })
        {
            foreach (var property in ((schemas.TryGetValue(name, out var v2) ? v2 as OpenApiSchema : null)?.Properties?.Values ?? []).OfType<OpenApiSchema>())
            {
                property.Type &= ~JsonSchemaType.Null;
            }
        }

        foreach (var name in new[] { nameof(PredictRequest), nameof(EvaluateRequest) })
        {
            if (!schemas.TryGetValue(name, out var found) || found is not OpenApiSchema request)
            {
                continue;
            }

            request.AdditionalPropertiesAllowed = true;
            request.AdditionalProperties = new OpenApiSchema
            {
                Description = "An entity key of a model whose features come from the store (e.g. user_id, item_id): a string or an integer.",
            };
            if (request.Properties is not { } properties)
            {
                continue;
            }

            if (properties.ContainsKey("image"))
            {
                properties["image"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.String,
                    Format = "byte",
                    Description = "Image models: a PNG, JPEG or WebP file, base64-encoded (a data: URL prefix is accepted).",
                };
            }

            // Either form, left untyped: generators map a oneOf of an array and an object to its first branch only.
            properties["features"] = new OpenApiSchema
            {
                Description = "Inline models: the feature vector in the manifest's column order ([0.1, 2.0, ...]), or an object of column name → number ({\"age\": 31, ...}).",
            };
            properties["instances"] = new OpenApiSchema
            {
                Type = JsonSchemaType.Array,
                Description = "Several rows in one run, each like a single-row body (image, features or entity keys); answered in order under \"predictions\".",
                Items = new OpenApiSchema { Type = JsonSchemaType.Object, AdditionalProperties = new OpenApiSchema() },
            };
            // A member that does not apply is left out: the service refuses null members rather than guess what they mean.
            foreach (var property in properties.Values.OfType<OpenApiSchema>())
            {
                property.Type &= ~JsonSchemaType.Null;
            }

            if (properties.ContainsKey("labels"))
            {
                properties["labels"] = new OpenApiSchema
                {
                    Type = JsonSchemaType.Object,
                    Description = "Head name → one label per row: numbers, rows of numbers (a box: [x_min, y_min, x_max, y_max]) or class names.",
                    AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema() },
                };
            }
        }
    }

    private void DescribeOperation(string path, OpenApiOperation operation, OpenApiDocument document)
    {
        if (string.IsNullOrEmpty(operation.Summary) && operation.OperationId is { } id && Summaries.TryGetValue(id, out var summary))
        {
            operation.Summary = summary;
        }

        if (string.IsNullOrEmpty(operation.Description) && operation.OperationId is { } named && Descriptions.TryGetValue(named, out var description))
        {
            operation.Description = description;
        }

        operation.Responses ??= [];
        var v2 = path.StartsWith("/v2", StringComparison.Ordinal);
        // As the API-key middleware decides: health and metrics stay open unless Security:ProtectOperationalEndpoints.
        var open = path is "/healthz" or "/readyz" or "/metrics" && !protectOperationalEndpoints;
        var readiness = path is "/readyz" or "/v2/health/ready";
        if (path.Contains("{model}", StringComparison.Ordinal) && !operation.Responses.ContainsKey("404"))
        {
            operation.Responses["404"] = Problem(document, NotFoundDescription);
        }

        if (path.EndsWith("/ready", StringComparison.Ordinal) && path.Contains("{model}", StringComparison.Ordinal) && !operation.Responses.ContainsKey("400"))
        {
            operation.Responses["400"] = new OpenApiResponse
            {
                Description = "The model is not ready (the protocol answers readiness with the status; here 400, as Triton does).",
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["application/json"] = new() { Schema = new OpenApiSchemaReference(nameof(V2ModelReady), document) },
                },
            };
        }

        if (path is "/readyz" or "/v2/health/ready" && !operation.Responses.ContainsKey("503"))
        {
            var body = path is "/readyz" ? nameof(ReadinessReport) : nameof(V2Ready);
            operation.Responses["503"] = new OpenApiResponse
            {
                Description = "Not ready: a model is not loaded or warm yet, or the service is stopping.",
                Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = new OpenApiSchemaReference(body, document) } },
            };
        }

        if (keysConfigured)
        {
            if (open)
            {
                operation.Security = [];
            }
            else if (!operation.Responses.ContainsKey("401"))
            {
                operation.Responses["401"] = v2
                    ? new OpenApiResponse
                    {
                        Description = "No API key, or an unknown one.",
                        Content = new Dictionary<string, OpenApiMediaType>
                        {
                            ["application/json"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.Object, Properties = new Dictionary<string, IOpenApiSchema> { ["error"] = new OpenApiSchema { Type = JsonSchemaType.String } } } },
                        },
                    }
                    : Problem(document, "No API key, or an unknown one: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'.");
            }
        }

        foreach (var (status, response) in operation.Responses)
        {
            if (response is not OpenApiResponse concrete)
            {
                continue;
            }

            if (status.StartsWith('4') || status.StartsWith('5'))
            {
                foreach (var media in (concrete.Content ?? new Dictionary<string, OpenApiMediaType>()).Where(c => c.Key.Contains("problem", StringComparison.Ordinal)))
                {
                    media.Value.Schema = new OpenApiSchemaReference(ProblemSchema, document);
                }
            }

            concrete.Description = string.IsNullOrEmpty(concrete.Description) || concrete.Description is "Bad Request" or "Not Found" or "Payload Too Large" or "Unsupported Media Type" or "Too Many Requests" or "Service Unavailable" or "OK"
                ? Describe(status, path) ?? concrete.Description
                : concrete.Description;
            // Retry-After where the service sends it: a full queue, an unanswering feature store; not readiness.
            if (status is "429" || (status is "503" && !readiness))
            {
                concrete.Headers ??= new Dictionary<string, IOpenApiHeader>();
                concrete.Headers["Retry-After"] = new OpenApiHeader
                {
                    Description = "Seconds to wait before retrying.",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1" },
                };
            }
        }
    }

    internal static OpenApiResponse Problem(OpenApiDocument document, string description) => new()
    {
        Description = description,
        Content = new Dictionary<string, OpenApiMediaType>
        {
            ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, document) },
        },
    };

    private static string? Describe(string status, string path) => status switch
    {
        "200" => path.EndsWith("/infer", StringComparison.Ordinal) ? "The output tensors." : "Success.",
        "400" => "The request is not valid: the problem names the field at fault.",
        "404" => NotFoundDescription,
        "413" => "The body is larger than Serve:MaxRequestBytes, or its images or rows larger than one request may be (Serve:MaxPixelsPerRequest, Serve:MaxTensorBytesInFlight).",
        "415" => "The body's content type is not one this route takes, or its Content-Encoding not gzip, deflate or br.",
        "429" => "The model's queue is full or would not reach this request in time, or the requests in flight hold the service's memory for input tensors: retry after Retry-After seconds.",
        "503" => path is "/readyz" ? "Not ready: a model is not loaded or warm, or the service is stopping." : "The feature store does not answer, or the service is stopping: retry after Retry-After seconds.",
        _ => null,
    };
}
