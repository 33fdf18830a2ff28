using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using MultiHeadServe.Features;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiHeadServe.Api;

/// <summary>
/// Response examples that are real responses: the first time the document is asked for, each served model's demo
/// body goes through the real feature fetch, the real run and the real handlers (predict, one head, evaluate) and the
/// answers become the 200 examples; the fetched tensor of the same row becomes the model's /v2 infer example, and
/// its real answer the /v2 response example. Built once per set of served models and kept (only timings would
/// differ); a failure is not kept, so the next request for the document tries again.
/// </summary>
public sealed class DemoResponseExamples(
    ModelRegistry registry, FeatureFetcher fetcher, InferenceService inference, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json,
    IServiceProvider services) : IDocumentAsyncFilter
{
    private readonly Lock _gate = new();
    private Task<Recorded>? _recorded;
    private long _recordedGeneration;

    public async Task ApplyAsync(OpenApiDocument swaggerDoc, DocumentFilterContext context, CancellationToken cancellationToken)
    {
        var recorded = await RecordedAsync();
        foreach (var (path, item) in swaggerDoc.Paths)
        {
            foreach (var operation in (item.Operations ?? []).Values)
            {
                var responses = path == "/v1/models" ? recorded.Models
                    : path == "/v1/models/{model}" ? recorded.Model
                    : path.EndsWith("/infer", StringComparison.Ordinal) ? recorded.Infer
                    : path.EndsWith("/heads/{head}/predict", StringComparison.Ordinal) ? recorded.Head
                    : path.EndsWith("/predict", StringComparison.Ordinal) ? recorded.Predict
                    : path.EndsWith("/evaluate", StringComparison.Ordinal) ? recorded.Evaluate
                    : null;
                if (path.Contains("{model}", StringComparison.Ordinal) && operation.Responses is { } all && !all.ContainsKey("404"))
                {
                    all["404"] = OpenApiContract.Problem(swaggerDoc, OpenApiContract.NotFoundDescription);
                }

                // /v2 words its errors as the protocol does; the example is /v1's.
                if (path.StartsWith("/v1/", StringComparison.Ordinal) && operation.Responses?.TryGetValue("404", out var missing) == true &&
                    missing is OpenApiResponse notFound && notFound.Content?.TryGetValue("application/problem+json", out var problem) == true)
                {
                    problem.Examples = new Dictionary<string, IOpenApiExample> { ["unknown-model"] = recorded.UnknownModel.ToOpenApi() };
                }

                if (path.EndsWith("/predict", StringComparison.Ordinal) && operation.Responses?.TryGetValue("400", out var invalid) == true &&
                    invalid is OpenApiResponse badRequest && badRequest.Content?.TryGetValue("application/problem+json", out var bad) == true && recorded.BadFeature is { } badFeature)
                {
                    bad.Examples = new Dictionary<string, IOpenApiExample> { [badFeature.Name] = badFeature.ToOpenApi() };
                }

                if (responses is null || operation.Responses?.TryGetValue("200", out var ok) != true || ok is not OpenApiResponse response)
                {
                    continue;
                }

                if (path.EndsWith("/infer", StringComparison.Ordinal) && operation.RequestBody?.Content?.TryGetValue("application/json", out var request) == true)
                {
                    if (recorded.WithoutTensor.Count > 0)
                    {
                        operation.Description = (operation.Description is { Length: > 0 } description ? description + "\n\n" : "") +
                            $"No example here for {string.Join(", ", recorded.WithoutTensor)}: a tensor that large is better sent with the " +
                            "binary tensor extension (the README shows how) or to /v1 as an image, and too large for this page to show.";
                    }

                    request.Examples ??= new Dictionary<string, IOpenApiExample>();
                    foreach (var example in recorded.InferRequests)
                    {
                        request.Examples[example.Name] = example.ToOpenApi();
                    }
                }

                response.Content ??= new Dictionary<string, OpenApiMediaType>();
                if (!response.Content.TryGetValue("application/json", out var media))
                {
                    media = response.Content["application/json"] = new OpenApiMediaType();
                }

                media.Examples ??= new Dictionary<string, IOpenApiExample>();
                foreach (var example in responses)
                {
                    media.Examples[example.Name] = example.ToOpenApi();
                }
            }
        }
    }

    /// <summary>
    /// The largest row given as a /v2 example: Swagger UI takes seconds to show a tensor of 12,288 numbers (shapes', 145 KB
    /// of JSON) and stops responding for more than 30 s on 150,528 (a 224x224 image's): such a model's operation says so instead.
    /// </summary>
    internal const int MaxTensorExampleValues = 16_384;

    private Task<Recorded> RecordedAsync()
    {
        lock (_gate)
        {
            // Recorded once per set of served models (the filter lives as long as the app's options): again when a
            // model is loaded, reloaded or unloaded. An incomplete recording (a model not answering, the feature store
            // down) serves this document and is tried again for the next.
            var generation = registry.Generation;
            if (_recorded is null || _recordedGeneration != generation || _recorded.IsFaulted || _recorded.IsCanceled ||
                (_recorded.IsCompletedSuccessfully && !_recorded.Result.Complete))
            {
                _recorded = RecordAsync(CancellationToken.None);
                _recordedGeneration = generation;
            }

            return _recorded;
        }
    }

    private async Task<Recorded> RecordAsync(CancellationToken cancellationToken)
    {
        var options = json.Value.SerializerOptions;
        var recorded = new Recorded();
        var predict = DemoRequestExamples.Build(registry);
        var evaluateBodies = DemoRequestExamples.BuildEvaluate(registry, predict).ToDictionary(e => e.Model, StringComparer.Ordinal);
        foreach (var example in predict.GroupBy(e => e.Model).Select(g => g.First()))
        {
            try
            {
                await RecordModelAsync(example, evaluateBodies, recorded, cancellationToken);
            }
#pragma warning disable CA1031 // The explorer must open even when a model cannot answer its example now: its examples are left out.
            catch (Exception)
#pragma warning restore CA1031
            {
                recorded.Complete = false;
            }
        }

        recorded.Models.Add(new("models", "Every served model", "", JsonSerializer.SerializeToNode(ModelsApi.ListModels(registry).Value, options)!));
        recorded.UnknownModel = new("unknown-model", "A model that is not served", "", await ProblemAsync(Problems.UnknownModel("no-such-model", registry).ExecuteAsync));
        if (registry.All.FirstOrDefault(m => m.Manifest.Features.Source == FeatureSource.Inline) is { } inline)
        {
            // A real refusal: a string among the features, as the middleware words it.
            var values = Enumerable.Range(0, inline.Manifest.Features.Columns!.Count).Select(i => i == 1 ? "\"two\"" : "1.5");
            using var document = JsonDocument.Parse($$"""{"features": [{{string.Join(", ", values)}}]}""");
            try
            {
                using var _ = await fetcher.FetchAsync(inline, document, null, FeatureFetcher.CommonEnvelope, CancellationToken.None);
            }
            catch (FeatureRequestException ex)
            {
                recorded.BadFeature = new($"{inline.Name}-bad-feature", $"{inline.Name}: a feature that is not a number", inline.Name,
                    await ProblemAsync(http => FeatureFetchMiddleware.WriteProblemAsync(http, ex)));
            }
        }
        foreach (var model in registry.All.OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            if (ModelsApi.GetModel(model.Name, registry).Result is Ok<ModelDetail> detail)
            {
                recorded.Model.Add(new(model.Name, $"{model.Name}: metadata, heads and manifest", model.Name, JsonSerializer.SerializeToNode(detail.Value, options)!));
            }
        }

        return recorded;
    }

    /// <summary>Runs a predict handler as a request would and reads its 200 body (the bytes it writes); null for any other status.</summary>
    private static async Task<JsonNode?> AnswerAsync(FetchedFeatures features, Func<HttpContext, Task<IResult>> handler)
    {
        var http = new DefaultHttpContext();
        http.Features.Set(features);
        using var body = new MemoryStream();
        http.Response.Body = body;
        await (await handler(http)).ExecuteAsync(http);
        await http.Response.BodyWriter.FlushAsync();
        return http.Response.StatusCode == StatusCodes.Status200OK ? JsonNode.Parse(body.ToArray()) : null;
    }

    private async Task RecordModelAsync(DemoExample example, Dictionary<string, DemoExample> evaluateBodies, Recorded recorded, CancellationToken cancellationToken)
    {
        var options = json.Value.SerializerOptions;
        var model = registry.All.First(m => m.Name == example.Model);
        using var document = JsonDocument.Parse(example.Body.ToJsonString());
        using var features = await fetcher.FetchAsync(model, document, null, FeatureFetcher.CommonEnvelope, cancellationToken);
        if (await AnswerAsync(features, http => PredictApi.Predict(features, http, inference, cancellationToken)) is { } predicted)
        {
            recorded.Predict.Add(example with { Summary = $"{model.Name}: the answer to the {example.Name} example", Body = predicted });
        }

        var head = model.ServedHeads[0].Name;
        if (await AnswerAsync(features, http => PredictApi.PredictHead(head, features, http, inference, cancellationToken)) is { } one)
        {
            recorded.Head.Add(example with { Summary = $"{model.Name}: head '{head}' for the {example.Name} example", Body = one });
        }

        if (evaluateBodies.TryGetValue(model.Name, out var evaluate))
        {
            recorded.Evaluate.Add(evaluate with { Summary = $"{model.Name}: the answer to the {evaluate.Name} example", Body = await EvaluateAsync(model, features, evaluate.Body, cancellationToken) });
        }

        // The same row as the protocol's tensor, exactly as the feature fetch produced it, when the explorer can show it.
        if (model.RowLength > MaxTensorExampleValues)
        {
            recorded.WithoutTensor.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{model.Name} (1x{string.Join("x", model.RowShape)}: {model.RowLength:N0} numbers)"));
            return;
        }

        var row = features.Tensor[..model.RowLength];
        var input = new JsonObject
        {
            ["name"] = model.FeatureInput.Name,
            ["shape"] = new JsonArray([JsonValue.Create(1L), .. model.RowShape.Select(d => (JsonNode?)JsonValue.Create(d))]),
            ["datatype"] = "FP32",
            ["data"] = new JsonArray([.. row.ToArray().Select(v => (JsonNode?)JsonValue.Create(v))]),
        };
        recorded.InferRequests.Add(new($"{model.Name}-tensor", $"{model.Name}: the {example.Name} row as a tensor (model = {model.Name})", model.Name,
            new JsonObject { ["id"] = $"{model.Name}-example", ["inputs"] = new JsonArray(input) }));
        var outputs = model.Session.Outputs.Select(o => o.Name).ToList();
        var run = await inference.RunAsync(model, row, outputs, cancellationToken);
        // Written in the protocol's own response shape (model_name, model_version, id, outputs), which does not change
        // with how the handler produces it.
        var answer = new JsonObject
        {
            ["model_name"] = model.Name,
            ["model_version"] = model.Version.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["id"] = $"{model.Name}-example",
            ["outputs"] = new JsonArray([.. outputs.Select(name => (JsonNode?)new JsonObject
            {
                ["name"] = name,
                ["shape"] = new JsonArray([.. run.Outputs[name].Shape.Select(d => (JsonNode?)JsonValue.Create(d))]),
                ["datatype"] = "FP32",
                ["data"] = new JsonArray([.. run.Outputs[name].Data.ToArray().Select(v => (JsonNode?)JsonValue.Create(v))]),
            })]),
        };
        recorded.Infer.Add(new($"{model.Name}-tensor", $"{model.Name}: the answer to the {model.Name}-tensor example", model.Name, answer));
    }

    /// <summary>A problem as the service writes it (the problem-details service adds the trace id of the request's activity).</summary>
    private async Task<JsonNode> ProblemAsync(Func<HttpContext, Task> write)
    {
        using var activity = new System.Diagnostics.Activity("OpenApiExample").Start();
        var http = new DefaultHttpContext { RequestServices = services };
        using var body = new MemoryStream();
        http.Response.Body = body;
        await write(http);
        return JsonNode.Parse(body.ToArray())!;
    }

    /// <summary>What evaluate answers for the example: its labels and α scored on one run, as the handler does.</summary>
    private async Task<JsonNode> EvaluateAsync(LoadedModel model, FetchedFeatures features, JsonNode body, CancellationToken cancellationToken)
    {
        using var document = JsonDocument.Parse(body.ToJsonString());
        var root = document.RootElement;
        var labels = root.GetProperty("labels").EnumerateObject().ToDictionary(p => p.Name, p => HeadLabels.FromJson(p.Name, p.Value), StringComparer.Ordinal);
        var heads = root.TryGetProperty("heads", out var h) ? h.EnumerateArray().Select(x => x.GetString()!).ToList() : model.Evaluator.HeadNames.Where(labels.ContainsKey).ToList();
        var combination = root.TryGetProperty("alpha", out var alpha) ? LossCombination.WithAlpha(alpha.GetDouble()) : null;
        var run = await inference.RunAsync(features, heads.Select(x => model.Heads[x].Output).Distinct(StringComparer.Ordinal).ToList(), cancellationToken);
        var result = model.Evaluator.Evaluate(run.Outputs, labels, heads, combination);
        var response = new EvaluateResponse(model.Name, model.Version, result.Loss, result.Combination, result.Alpha, result.Heads, PredictApi.Timings(features, run));
        return JsonSerializer.SerializeToNode(response, json.Value.SerializerOptions)!;
    }

    private sealed class Recorded
    {
        public bool Complete { get; set; } = true;
        public DemoExample UnknownModel { get; set; } = null!;
        public DemoExample? BadFeature { get; set; }
        public List<DemoExample> Models { get; } = [];
        public List<DemoExample> Model { get; } = [];
        public List<DemoExample> Predict { get; } = [];
        public List<DemoExample> Head { get; } = [];
        public List<DemoExample> Evaluate { get; } = [];
        public List<DemoExample> Infer { get; } = [];
        public List<DemoExample> InferRequests { get; } = [];
        public List<string> WithoutTensor { get; } = [];
    }
}
