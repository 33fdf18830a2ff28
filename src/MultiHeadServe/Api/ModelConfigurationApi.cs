using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Models;

namespace MultiHeadServe.Api;

/// <summary>
/// Triton's model configuration extension: <c>GET /v2/models/{model}[/versions/{version}]/config</c> answers the
/// version's configuration in Triton's own terms (its <c>config.pbtxt</c> as JSON), derived from the manifest and the
/// loaded session, so Triton's tools (perf_analyzer, model_analyzer, <c>get_model_config</c>) read batch limits,
/// tensors, batching and instances as they would from Triton. gRPC's <c>ModelConfig</c> answers the same.
/// <para>
/// <c>max_batch_size</c> is the rows one request may carry (<c>Serve:MaxInstances</c>) for a model whose input has a
/// dynamic batch dimension, 0 otherwise; <c>dims</c> then leave the batch dimension out, as in Triton. The dynamic
/// batcher's own run size (the manifest's <c>maxBatchSize</c>) is the parameter <c>max_batch_rows</c>, and the heads a
/// request may ask for the parameter <c>heads</c>.
/// </para>
/// </summary>
public static class ModelConfigurationApi
{
    public static RouteGroupBuilder MapModelConfigurationApi(this RouteGroupBuilder v2)
    {
        v2.MapGet("/models/{model}/config", (string model, ModelRegistry registry, IOptions<ServeOptions> options) => Configuration(model, null, registry, options))
            .WithName("V2ModelConfig").WithSummary("The model's configuration in Triton's terms: batch limits, tensors, dynamic batching, instances.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        v2.MapGet("/models/{model}/versions/{version}/config", Configuration)
            .WithName("V2ModelVersionConfig").WithSummary("One version's configuration in Triton's terms.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return v2;
    }

    internal static Results<Ok<V2ModelConfig>, ProblemHttpResult> Configuration(string model, string? version, ModelRegistry registry, IOptions<ServeOptions> options)
    {
        if (string.IsNullOrEmpty(model))
        {
            // Only gRPC can ask without a name (statistics then mean every model; a configuration is one model's).
            return Problems.Create(StatusCodes.Status404NotFound, "Not found", "No model named '' is served.", "model");
        }

        if (ModelStatisticsApi.Select(model, version, registry, out var versions, out var served) is { } problem)
        {
            return problem;
        }

        // Without a version: the one unversioned requests go to, from the same lookup (a second one could find the
        // model unloaded meanwhile).
        var loaded = version is null ? served!.Default : versions[0];
        return TypedResults.Ok(Describe(loaded, options.Value.MaxInstances));
    }

    /// <summary>The version's configuration; <paramref name="maxRows"/> is <c>Serve:MaxInstances</c>.</summary>
    internal static V2ModelConfig Describe(LoadedModel model, int maxRows)
    {
        var manifest = model.Manifest;
        var batched = model.FeatureInput.HasDynamicBatch;
        var batching = manifest.Batching;
        var dynamicBatching = batching.Enabled && batching.MaxBatchSize > 1;
        var labelled = manifest.Heads.Where(h => h.Served && h.Labels is not null)
            .GroupBy(h => h.Output, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First().Labels!, StringComparer.Ordinal);
        var parameters = new Dictionary<string, V2ModelParameter>(StringComparer.Ordinal)
        {
            ["heads"] = new(string.Join(',', model.ServedHeadNames)),
        };
        if (dynamicBatching)
        {
            parameters["max_batch_rows"] = new(batching.MaxBatchSize.ToString(CultureInfo.InvariantCulture));
        }

        var policy = manifest.VersionPolicy ?? VersionPolicy.Default;
        return new V2ModelConfig(
            model.Name,
            "onnxruntime_onnx",
            "onnxruntime",
            new V2VersionPolicy(
                policy.Latest is { } latest ? new V2LatestVersions(latest.NumVersions) : null,
                policy.All is null ? null : new V2AllVersions(),
                policy.Specific is { } specific ? new V2SpecificVersions(specific.Versions) : null),
            batched ? maxRows : 0,
            [.. model.Session.Inputs.Where(i => i.Name == model.FeatureInput.Name).Select(i => new V2ModelInput(
                i.Name, DataType(i.ElementType), manifest.Features.Image is not null && i.Shape.Count == 4 ? "FORMAT_NCHW" : "FORMAT_NONE", Dims(i, batched)))],
            [.. model.ServedOutputs.Select(name => model.Session.Outputs.First(o => o.Name == name)).Select(o => new V2ModelOutput(
                o.Name, DataType(o.ElementType), Dims(o, batched && o.HasDynamicBatch), labelled.GetValueOrDefault(o.Name)))],
            dynamicBatching
                ? new V2DynamicBatching(
                    batching.PreferredBatchSizes,
                    batching.MaxQueueDelayMicroseconds,
                    new V2QueuePolicy("REJECT", Math.Max(0, batching.QueueTimeoutMicroseconds), false, batching.MaxQueueSize))
                : null,
            [new V2InstanceGroup(
                model.Name,
                model.Session.ExecutionProvider == "CUDAExecutionProvider" ? "KIND_GPU" : "KIND_CPU",
                dynamicBatching ? batching.Instances : 1)],
            "model.onnx",
            parameters);
    }

    /// <summary>The tensor's dimensions, without the batch dimension when the model batches (-1 stays for a dynamic one).</summary>
    private static IReadOnlyList<long> Dims(TensorMetadata tensor, bool dropBatch) => dropBatch ? [.. tensor.Shape.Skip(1)] : tensor.Shape;

    /// <summary>Triton's name for an element type: <c>TYPE_</c> and the protocol's datatype (<c>TYPE_FP32</c>).</summary>
    private static string DataType(Onnx.TensorElementType type) => "TYPE_" + OpenInferenceApi.DataType(type);
}

/// <summary>A model version's configuration as Triton's model configuration extension gives it (the fields that apply).</summary>
public sealed record V2ModelConfig(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("platform")] string Platform,
    [property: JsonPropertyName("backend")] string Backend,
    [property: JsonPropertyName("version_policy")] V2VersionPolicy VersionPolicy,
    [property: JsonPropertyName("max_batch_size")] int MaxBatchSize,
    [property: JsonPropertyName("input")] IReadOnlyList<V2ModelInput> Input,
    [property: JsonPropertyName("output")] IReadOnlyList<V2ModelOutput> Output,
    [property: JsonPropertyName("dynamic_batching")] V2DynamicBatching? DynamicBatching,
    [property: JsonPropertyName("instance_group")] IReadOnlyList<V2InstanceGroup> InstanceGroup,
    [property: JsonPropertyName("default_model_filename")] string DefaultModelFilename,
    [property: JsonPropertyName("parameters")] IReadOnlyDictionary<string, V2ModelParameter> Parameters);

/// <summary>Exactly one of the three is set, as in the manifest.</summary>
public sealed record V2VersionPolicy(
    [property: JsonPropertyName("latest")] V2LatestVersions? Latest,
    [property: JsonPropertyName("all")] V2AllVersions? All,
    [property: JsonPropertyName("specific")] V2SpecificVersions? Specific);

public sealed record V2LatestVersions([property: JsonPropertyName("num_versions")] int NumVersions);

public sealed record V2AllVersions;

public sealed record V2SpecificVersions([property: JsonPropertyName("versions")] IReadOnlyList<int> Versions);

public sealed record V2ModelInput(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("data_type")] string DataType,
    [property: JsonPropertyName("format")] string Format,
    [property: JsonPropertyName("dims")] IReadOnlyList<long> Dims);

/// <summary>A graph output a served head reads; <c>label_filename</c> is its head's labels file, where it has one.</summary>
public sealed record V2ModelOutput(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("data_type")] string DataType,
    [property: JsonPropertyName("dims")] IReadOnlyList<long> Dims,
    [property: JsonPropertyName("label_filename")] string? LabelFilename);

public sealed record V2DynamicBatching(
    [property: JsonPropertyName("preferred_batch_size")] IReadOnlyList<int> PreferredBatchSize,
    [property: JsonPropertyName("max_queue_delay_microseconds")] long MaxQueueDelayMicroseconds,
    [property: JsonPropertyName("default_queue_policy")] V2QueuePolicy DefaultQueuePolicy);

/// <summary>A request that would wait past the timeout is refused (<c>REJECT</c>); 0 means no timeout.</summary>
public sealed record V2QueuePolicy(
    [property: JsonPropertyName("timeout_action")] string TimeoutAction,
    [property: JsonPropertyName("default_timeout_microseconds")] long DefaultTimeoutMicroseconds,
    [property: JsonPropertyName("allow_timeout_override")] bool AllowTimeoutOverride,
    [property: JsonPropertyName("max_queue_size")] int MaxQueueSize);

public sealed record V2InstanceGroup(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("count")] int Count);

public sealed record V2ModelParameter([property: JsonPropertyName("string_value")] string StringValue);
