using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;

namespace MultiHeadServe.Api;

/// <summary>
/// Triton's statistics extension on REST: <c>GET /v2/models/stats</c> (every served version of every model),
/// <c>/v2/models/{model}/stats</c> (every served version of one) and <c>/v2/models/{model}/versions/{version}/stats</c>.
/// Counts and nanosecond totals since each version was loaded (<see cref="ModelStatistics"/>), in the extension's
/// JSON; gRPC's <c>ModelStatistics</c> answers the same.
/// </summary>
public static class ModelStatisticsApi
{
    public static RouteGroupBuilder MapModelStatisticsApi(this RouteGroupBuilder v2)
    {
        v2.MapGet("/models/stats", (ModelRegistry registry) => Statistics(null, null, registry))
            .WithName("V2Statistics").WithSummary("Every served model version's request, queue and compute statistics since it was loaded.");
        v2.MapGet("/models/{model}/stats", (string model, ModelRegistry registry) => Statistics(model, null, registry))
            .WithName("V2ModelStatistics").WithSummary("Statistics of every served version of the model.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        v2.MapGet("/models/{model}/versions/{version}/stats", Statistics)
            .WithName("V2ModelVersionStatistics").WithSummary("Statistics of one served version of the model.")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return v2;
    }

    internal static Results<Ok<V2StatisticsResponse>, ProblemHttpResult> Statistics(string? model, string? version, ModelRegistry registry) =>
        Select(model, version, registry, out var versions, out _) is { } problem
            ? problem
            : TypedResults.Ok(new V2StatisticsResponse([.. versions.Select(Describe)]));

    /// <summary>
    /// The served versions a statistics request names, by model name and version number; a model or version that is not
    /// served is a 404 naming <c>model</c> or <c>version</c>, as on every /v2 route.
    /// </summary>
    /// <remarks><paramref name="served"/> is the model looked up (null when every model was asked for), from the same lookup.</remarks>
    internal static ProblemHttpResult? Select(string? model, string? version, ModelRegistry registry, out IReadOnlyList<LoadedModel> versions, out ServedModel? served)
    {
        versions = [];
        served = null;
        if (string.IsNullOrEmpty(model))
        {
            versions = [.. registry.Models.OrderBy(m => m.Name, StringComparer.Ordinal).SelectMany(m => m.Versions.Values.OrderBy(v => v.Version))];
            return null;
        }

        if (!registry.TryGetServed(model, out var found))
        {
            return Problems.Create(StatusCodes.Status404NotFound, "Not found", $"No model named '{model}' is served.", "model");
        }

        served = found;
        if (string.IsNullOrEmpty(version))
        {
            versions = [.. served.Versions.Values.OrderBy(v => v.Version)];
            return null;
        }

        if (!int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || !served.Versions.TryGetValue(number, out var loaded))
        {
            return Problems.Create(StatusCodes.Status404NotFound, "Not found",
                $"Model '{model}' does not serve version '{version}'; served versions: {string.Join(", ", served.ServedVersions)}.", "version");
        }

        versions = [loaded];
        return null;
    }

    private static V2ModelStatistics Describe(LoadedModel model)
    {
        var stats = model.Statistics.Snapshot();
        return new V2ModelStatistics(
            model.Name,
            model.Version.ToString(CultureInfo.InvariantCulture),
            stats.LastInferenceMilliseconds,
            stats.InferenceCount,
            stats.ExecutionCount,
            new V2InferenceStatistics(
                Duration(stats.Success), Duration(stats.Fail), Duration(stats.Queue),
                Duration(stats.ComputeInput), Duration(stats.ComputeInfer), Duration(stats.ComputeOutput),
                new V2Duration(0, 0), new V2Duration(0, 0)),
            [.. stats.Batches.Select(b => new V2BatchStatistics(b.BatchSize, Duration(b.ComputeInput), Duration(b.ComputeInfer), Duration(b.ComputeOutput)))],
            []);
    }

    private static V2Duration Duration(DurationStatistic statistic) => new(statistic.Count, statistic.Nanoseconds);
}

/// <summary>The statistics extension's response: one entry per model version.</summary>
public sealed record V2StatisticsResponse([property: JsonPropertyName("model_stats")] IReadOnlyList<V2ModelStatistics> ModelStats);

/// <summary>
/// One version's statistics: <c>inference_count</c> counts rows of successful requests, <c>execution_count</c> session
/// runs (a dynamic batch is one), <c>last_inference</c> the last request's time in Unix milliseconds.
/// </summary>
public sealed record V2ModelStatistics(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("last_inference")] long LastInference,
    [property: JsonPropertyName("inference_count")] long InferenceCount,
    [property: JsonPropertyName("execution_count")] long ExecutionCount,
    [property: JsonPropertyName("inference_stats")] V2InferenceStatistics InferenceStats,
    [property: JsonPropertyName("batch_stats")] IReadOnlyList<V2BatchStatistics> BatchStats,
    [property: JsonPropertyName("memory_usage")] IReadOnlyList<object> MemoryUsage);

/// <summary>
/// Per request: <c>success</c> and <c>fail</c> (time in the engine, queue and run), <c>queue</c>, and the three phases
/// of the run that served it; there is no response cache, so its two entries stay zero.
/// </summary>
public sealed record V2InferenceStatistics(
    [property: JsonPropertyName("success")] V2Duration Success,
    [property: JsonPropertyName("fail")] V2Duration Fail,
    [property: JsonPropertyName("queue")] V2Duration Queue,
    [property: JsonPropertyName("compute_input")] V2Duration ComputeInput,
    [property: JsonPropertyName("compute_infer")] V2Duration ComputeInfer,
    [property: JsonPropertyName("compute_output")] V2Duration ComputeOutput,
    [property: JsonPropertyName("cache_hit")] V2Duration CacheHit,
    [property: JsonPropertyName("cache_miss")] V2Duration CacheMiss);

/// <summary>The session runs of one batch size (rows per run).</summary>
public sealed record V2BatchStatistics(
    [property: JsonPropertyName("batch_size")] int BatchSize,
    [property: JsonPropertyName("compute_input")] V2Duration ComputeInput,
    [property: JsonPropertyName("compute_infer")] V2Duration ComputeInfer,
    [property: JsonPropertyName("compute_output")] V2Duration ComputeOutput);

/// <summary>A count and a total duration in nanoseconds.</summary>
public sealed record V2Duration([property: JsonPropertyName("count")] long Count, [property: JsonPropertyName("ns")] long Ns);
