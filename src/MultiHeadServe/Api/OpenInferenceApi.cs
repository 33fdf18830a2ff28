using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using MultiHeadServe.Features;
using MultiHeadServe.Inference;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Api;

/// <summary>
/// The Open Inference Protocol (KServe v2 REST) for clients that already speak it: the client sends the
/// model's input tensor and receives output tensors. Runs go through the same batcher as /v1. Errors are
/// RFC 7807 problems that also carry the protocol's <c>error</c> member.
/// </summary>
public static class OpenInferenceApi
{
    public static RouteGroupBuilder MapOpenInferenceApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v2").WithTags("Open Inference Protocol (v2)");
        group.MapGet("/", ServerMetadata).WithName("V2ServerMetadata").WithSummary("Server name, version and extensions.");
        group.MapGet("/health/live", () => TypedResults.Ok(new V2Live(true))).WithName("V2Live");
        group.MapGet("/health/ready", ServerReady).WithName("V2Ready");
        group.MapGet("/models/{model}", ModelMetadata).WithName("V2ModelMetadata").WithSummary("Inputs and outputs as tensors.");
        group.MapGet("/models/{model}/versions/{version}", ModelMetadata).WithName("V2ModelVersionMetadata");
        group.MapGet("/models/{model}/ready", ModelReady).WithName("V2ModelReady");
        group.MapGet("/models/{model}/versions/{version}/ready", ModelReady).WithName("V2ModelVersionReady");
        group.MapPost("/models/{model}/infer", Infer).WithName("V2Infer").WithSummary("Runs the model on the input tensor; returns output tensors.")
            .WithMetadata(new JsonBodyMetadata(typeof(V2InferRequest))).ProducesProblem(400).ProducesProblem(404).ProducesProblem(413).ProducesProblem(415).ProducesProblem(429);
        group.MapPost("/models/{model}/versions/{version}/infer", Infer).WithName("V2InferVersion")
            .WithMetadata(new JsonBodyMetadata(typeof(V2InferRequest))).ProducesProblem(400).ProducesProblem(404).ProducesProblem(413).ProducesProblem(415).ProducesProblem(429);
        return group;
    }

    internal static Ok<V2ServerMetadata> ServerMetadata() =>
        TypedResults.Ok(new V2ServerMetadata("multiheadserve", typeof(OpenInferenceApi).Assembly.GetName().Version?.ToString() ?? "0", []));

    internal static Results<Ok<V2Ready>, JsonHttpResult<V2Ready>> ServerReady(ModelRegistry registry)
    {
        var ready = registry.Loaded && registry.All.All(m => m.Warm);
        return ready ? TypedResults.Ok(new V2Ready(true)) : TypedResults.Json(new V2Ready(false), statusCode: StatusCodes.Status503ServiceUnavailable);
    }

    internal static Results<Ok<V2ModelMetadata>, ProblemHttpResult> ModelMetadata(string model, string? version, ModelRegistry registry)
    {
        if (Resolve(model, version, registry, out var loaded) is { } problem)
        {
            return problem;
        }

        registry.TryGetServed(loaded.Name, out var served);
        return TypedResults.Ok(new V2ModelMetadata(
            loaded.Name,
            (served?.ServedVersions ?? [loaded.Version]).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList(),
            "onnxruntime_onnx",
            loaded.Session.Inputs.Select(Describe).ToList(),
            loaded.Session.Outputs.Select(Describe).ToList()));
    }

    /// <summary>
    /// The protocol answers readiness with the status code: 200 ready, 4xx not (here 400, as Triton does). A model
    /// that reads the feature store is not ready while the store does not answer. A version folder the repository
    /// holds but does not serve (refused at load, or not selected by the version policy) is not ready (400); a model
    /// or version the repository does not know is 404.
    /// </summary>
    internal static async Task<Results<Ok<V2ModelReady>, JsonHttpResult<V2ModelReady>, ProblemHttpResult>> ModelReady(
        string model, string? version, ModelRegistry registry, FeatureStoreHealth store, CancellationToken cancellationToken)
    {
        if (!registry.TryGetServed(model, out var served))
        {
            return Error(StatusCodes.Status404NotFound, "model", $"No model named '{model}' is served.");
        }

        var loaded = served.Default;
        if (version is not null)
        {
            var number = int.TryParse(version, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : -1;
            if (!served.Versions.TryGetValue(number, out loaded!))
            {
                return served.RepositoryVersions.Contains(number)
                    ? TypedResults.Json(new V2ModelReady(served.Name, false), statusCode: StatusCodes.Status400BadRequest)
                    : Error(StatusCodes.Status404NotFound, "version", $"Model '{model}' has no version '{version}'; served versions: {string.Join(", ", served.ServedVersions)}.");
            }
        }

        var ready = await store.IsReadyAsync(loaded, cancellationToken);
        return ready
            ? TypedResults.Ok(new V2ModelReady(loaded.Name, true))
            : TypedResults.Json(new V2ModelReady(loaded.Name, false), statusCode: StatusCodes.Status400BadRequest);
    }

    internal static async Task<Results<Ok<V2InferResponse>, ProblemHttpResult>> Infer(
        string model, string? version, HttpContext context, ModelRegistry registry, InferenceService inference,
        IOptions<ServeOptions> options, CancellationToken cancellationToken)
    {
        if (Resolve(model, version, registry, out var loaded, context) is { } problem)
        {
            return problem;
        }

        var telemetry = context.Features.Get<RequestTelemetry>();
        if (telemetry is not null)
        {
            telemetry.Model = loaded.Name;
        }

        PooledBody body;
        try
        {
            body = await RequestBody.ReadJsonAsync(context, options.Value.MaxRequestBytes);
        }
        catch (FeatureRequestException ex)
        {
            return Error(ex.Status, ex.Field, ex.Message);
        }

        using (body)
        {
            try
            {
                using var document = JsonBody.Parse(body.Memory);
                var (id, rows, outputs) = ReadRequest(document.RootElement, loaded, options.Value.MaxInstances, body.Memory.Length);
                var result = await inference.RunAsync(loaded, rows, outputs, cancellationToken);
                if (telemetry is not null)
                {
                    telemetry.Rows = rows.Length / loaded.RowLength;
                    telemetry.HeadsLabel = string.Join('+', outputs);
                    telemetry.QueueMilliseconds = result.QueueMilliseconds;
                    telemetry.InferenceMilliseconds = result.RunMilliseconds;
                    telemetry.BatchRows = result.BatchRows;
                }

                return TypedResults.Ok(new V2InferResponse(
                    loaded.Name,
                    loaded.Version.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    id,
                    outputs.Select(name =>
                    {
                        var tensor = result.Outputs[name];
                        return new V2OutputTensor(name, tensor.Shape, "FP32", tensor.Data);
                    }).ToList()));
            }
            catch (FeatureRequestException ex)
            {
                return Error(ex.Status, ex.Field, ex.Message);
            }
            catch (QueueFullException ex)
            {
                context.Response.Headers.RetryAfter = "1";
                return Error(StatusCodes.Status429TooManyRequests, "model", ex.Message);
            }
        }
    }

    /// <summary>
    /// The request's tensor and the outputs it asks for. Every size the client declares is checked before the tensor is
    /// allocated: the rows against <c>Serve:MaxInstances</c>, as on /v1, and the values against what a body of
    /// <paramref name="bodyBytes"/> can hold (every JSON number takes at least two bytes), so a few bytes declaring a
    /// huge shape cost nothing.
    /// </summary>
    private static (string? Id, float[] Rows, List<string> Outputs) ReadRequest(JsonElement root, LoadedModel model, int maxRows, int bodyBytes)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("inputs", out var inputs) || inputs.ValueKind != JsonValueKind.Array)
        {
            throw FeatureRequestException.BadField("inputs", "The body must be an object with an 'inputs' array of tensors.");
        }

        var id = root.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.String ? idElement.GetString() : null;
        if (inputs.GetArrayLength() != 1)
        {
            throw FeatureRequestException.BadField("inputs", $"The model takes one input tensor, '{model.FeatureInput.Name}'; got {inputs.GetArrayLength()}.");
        }

        var input = inputs[0];
        if (input.ValueKind != JsonValueKind.Object)
        {
            throw FeatureRequestException.BadField("inputs[0]", $"an input tensor is an object with name, datatype, shape and data; got {input.ValueKind.ToString().ToLowerInvariant()}.");
        }
        var name = input.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        if (name != model.FeatureInput.Name)
        {
            throw FeatureRequestException.BadField("inputs[0].name", $"The model's input is '{model.FeatureInput.Name}', not '{name}'.");
        }

        var datatype = input.TryGetProperty("datatype", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        if (datatype is not ("FP32" or "FP64" or "FP16"))
        {
            throw FeatureRequestException.BadField("inputs[0].datatype", $"The input '{name}' is FP32 (FP64 and FP16 are converted); got '{datatype}'.");
        }

        if (!input.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array ||
            shapeElement.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out var v) || v < 0))
        {
            throw FeatureRequestException.BadField("inputs[0].shape", "shape must be an array of non-negative integers.");
        }

        var shape = shapeElement.EnumerateArray().Select(x => x.GetInt64()).ToArray();
        if (shape.Length != model.RowShape.Count + 1 || !shape.Skip(1).SequenceEqual(model.RowShape) || shape[0] < 1)
        {
            throw FeatureRequestException.BadField("inputs[0].shape",
                $"shape [{string.Join(", ", shape)}] does not fit the input '{name}' [-1, {string.Join(", ", model.RowShape)}].");
        }

        if (shape[0] > maxRows)
        {
            throw FeatureRequestException.BadField("inputs[0].shape", $"{shape[0]} rows in one request; at most {maxRows} (Serve:MaxInstances).");
        }

        var count = shape[0] * model.RowLength;
        if (count > bodyBytes / 2)
        {
            throw FeatureRequestException.BadField("inputs[0].shape",
                $"shape [{string.Join(", ", shape)}] declares {count} values; a body of {bodyBytes} bytes holds at most {bodyBytes / 2}.");
        }

        var values = new float[(int)count];
        var written = 0;
        if (!input.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
        {
            throw FeatureRequestException.BadField("inputs[0].data", "data must be an array of numbers (flat, row-major, or nested).");
        }

        Flatten(data, values, ref written, "inputs[0].data");
        if (written != count)
        {
            throw FeatureRequestException.BadField("inputs[0].data", $"shape [{string.Join(", ", shape)}] needs {count} values; data has {written}.");
        }

        var outputs = model.Session.Outputs.Select(o => o.Name).ToList();
        if (root.TryGetProperty("outputs", out var requested) && requested.ValueKind == JsonValueKind.Array && requested.GetArrayLength() > 0)
        {
            outputs = [];
            var i = 0;
            foreach (var output in requested.EnumerateArray())
            {
                var outputName = output.ValueKind == JsonValueKind.Object && output.TryGetProperty("name", out var o) && o.ValueKind == JsonValueKind.String ? o.GetString()! : "";
                if (model.Session.OutputIndex(outputName) < 0)
                {
                    throw new FeatureRequestException(StatusCodes.Status400BadRequest, "Invalid request", $"outputs[{i}].name",
                        $"'{outputName}' is not an output of the model (outputs: {string.Join(", ", model.Session.Outputs.Select(x => x.Name))}).");
                }

                outputs.Add(outputName);
                i++;
            }
        }

        return (id, values, outputs);
    }

    private static void Flatten(JsonElement element, float[] values, ref int written, string field)
    {
        foreach (var item in element.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.Array)
            {
                Flatten(item, values, ref written, field);
                continue;
            }

            if (item.ValueKind != JsonValueKind.Number)
            {
                throw FeatureRequestException.BadField($"{field}[{written}]", $"expected a number, got {item.ValueKind.ToString().ToLowerInvariant()} (NaN and Infinity are not accepted).");
            }

            var value = (float)item.GetDouble();
            if (!float.IsFinite(value))
            {
                throw FeatureRequestException.BadField($"{field}[{written}]", $"{item.GetRawText()} is outside the float32 range.");
            }

            if (written == values.Length)
            {
                throw FeatureRequestException.BadField(field, $"data has more than the {values.Length} values the shape needs.");
            }

            values[written++] = value;
        }
    }

    /// <summary>
    /// Finds the model at the version asked for (null: its default). With <paramref name="holdFor"/>, the version is held
    /// until that request's response is done, so a reload meanwhile does not dispose it under the request.
    /// </summary>
    private static ProblemHttpResult? Resolve(string model, string? version, ModelRegistry registry, out LoadedModel loaded, HttpContext? holdFor = null)
    {
        switch (registry.TryLease(model, version, out loaded))
        {
            case ModelLookup.UnknownModel:
                return Error(StatusCodes.Status404NotFound, "model", $"No model named '{model}' is served.");
            case ModelLookup.UnknownVersion:
                registry.TryGetServed(model, out var served);
                return Error(StatusCodes.Status404NotFound, "version",
                    $"Model '{model}' does not serve version '{version}'; served versions: {string.Join(", ", served?.ServedVersions ?? [])}.");
        }

        if (holdFor is null)
        {
            loaded.Release();
        }
        else
        {
            holdFor.Response.RegisterForDispose(new VersionHold(loaded));
        }

        return null;
    }

    /// <summary>Releases a held model version when the response is done.</summary>
    private sealed class VersionHold(LoadedModel model) : IDisposable
    {
        public void Dispose() => model.Release();
    }

    private static V2Tensor Describe(TensorMetadata node) => new(node.Name, DataType(node.ElementType), node.Shape);

    private static string DataType(TensorElementType type) => type switch
    {
        TensorElementType.Float32 => "FP32",
        TensorElementType.Float16 => "FP16",
        TensorElementType.Float64 => "FP64",
        TensorElementType.Int64 => "INT64",
        TensorElementType.Int32 => "INT32",
        TensorElementType.UInt8 => "UINT8",
        TensorElementType.Bool => "BOOL",
        _ => type.ToName().ToUpperInvariant(),
    };

    private static ProblemHttpResult Error(int status, string field, string message) => TypedResults.Problem(
        statusCode: status,
        title: status == StatusCodes.Status404NotFound ? "Not found" : "Invalid request",
        detail: message,
        extensions: new Dictionary<string, object?> { ["error"] = message, ["field"] = field });
}

public sealed record V2ServerMetadata(string Name, string Version, IReadOnlyList<string> Extensions);

public sealed record V2Live(bool Live);

public sealed record V2Ready(bool Ready);

public sealed record V2ModelReady(string Name, bool Ready);

public sealed record V2Tensor(string Name, string Datatype, IReadOnlyList<long> Shape);

public sealed record V2ModelMetadata(string Name, IReadOnlyList<string> Versions, string Platform, IReadOnlyList<V2Tensor> Inputs, IReadOnlyList<V2Tensor> Outputs);

/// <summary>An inference request: one input tensor (data flat row-major or nested), optional output names.</summary>
public sealed record V2InferRequest(string? Id, IReadOnlyList<V2InputTensor> Inputs, IReadOnlyList<V2RequestedOutput>? Outputs);

public sealed record V2InputTensor(string Name, IReadOnlyList<long> Shape, string Datatype, IReadOnlyList<float> Data);

public sealed record V2RequestedOutput(string Name);

public sealed record V2OutputTensor(string Name, IReadOnlyList<long> Shape, string Datatype, ReadOnlyMemory<float> Data);

public sealed record V2InferResponse(
    [property: System.Text.Json.Serialization.JsonPropertyName("model_name")] string ModelName,
    [property: System.Text.Json.Serialization.JsonPropertyName("model_version")] string ModelVersion,
    string? Id,
    IReadOnlyList<V2OutputTensor> Outputs);
