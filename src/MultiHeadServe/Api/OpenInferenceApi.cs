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
        group.MapModelStatisticsApi();
        group.MapModelConfigurationApi();
        return group;
    }

    /// <summary>The server's metadata; the repository extension is announced only where it is served (API keys configured).</summary>
    internal static Ok<V2ServerMetadata> ServerMetadata(Security.ApiKeys keys) =>
        TypedResults.Ok(new V2ServerMetadata("multiheadserve", typeof(OpenInferenceApi).Assembly.GetName().Version?.ToString() ?? "0",
            keys.Enabled ? [.. OpenInferenceCall.Extensions, "model_repository"] : OpenInferenceCall.Extensions));

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

    /// <summary>
    /// The protocol's infer on the /v1 request path: the body read once under Serve:MaxRequestBytes, rows under
    /// Serve:MaxInstances, the model's batcher, and the request's metrics and log line. The body is JSON, or JSON
    /// followed by binary tensor data (<see cref="OpenInferenceRest"/>).
    /// </summary>
    internal static async Task<Results<OpenInferenceResult, ProblemHttpResult>> Infer(
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

        PooledBody? body = null;
        try
        {
            // With the binary extension's header the body is JSON then bytes, whatever its Content-Type says.
            var binary = context.Request.Headers.ContainsKey(OpenInferenceRest.HeaderLength);
            body = binary
                ? await RequestBody.ReadAsync(context, options.Value.MaxRequestBytes)
                : await RequestBody.ReadJsonAsync(context, options.Value.MaxRequestBytes);
            var jsonLength = OpenInferenceRest.JsonLength(context.Request, body.Memory.Length);
            if (binary)
            {
                // Read as raw bytes: its JSON head is parsed too.
                body.CountJsonParse(jsonLength);
            }

            using var document = JsonBody.Parse(body.Memory[..jsonLength]);
            var request = OpenInferenceRest.Read(document.RootElement, body.Memory.Span[jsonLength..], loaded, options.Value.MaxInstances, jsonLength);
            var result = await OpenInferenceCall.RunAsync(inference, loaded, request.Rows, request.Outputs, telemetry, cancellationToken);
            return new OpenInferenceResult(loaded, request, result);
        }
        catch (FeatureRequestException ex)
        {
            if (ex.RetryAfter is { } retryAfter)
            {
                context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            return Problems.Create(ex.Status, ex.Title, ex.Message, ex.Field);
        }
        finally
        {
            body?.Dispose();
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

    internal static string DataType(TensorElementType type) => type switch
    {
        TensorElementType.Float32 => "FP32",
        TensorElementType.Float16 => "FP16",
        TensorElementType.Float64 => "FP64",
        TensorElementType.Int64 => "INT64",
        TensorElementType.Int32 => "INT32",
        TensorElementType.UInt8 => "UINT8",
        TensorElementType.Bool => "BOOL",
        TensorElementType.Int8 => "INT8",
        TensorElementType.Int16 => "INT16",
        TensorElementType.UInt16 => "UINT16",
        TensorElementType.UInt32 => "UINT32",
        TensorElementType.UInt64 => "UINT64",
        TensorElementType.BFloat16 => "BF16",
        TensorElementType.String => "BYTES",
        _ => type.ToName().ToUpperInvariant(),
    };

    private static ProblemHttpResult Error(int status, string field, string message) =>
        Problems.Create(status, status == StatusCodes.Status404NotFound ? "Not found" : "Invalid request", message, field);
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
