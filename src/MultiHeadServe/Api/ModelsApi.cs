using Microsoft.AspNetCore.Http.HttpResults;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Models;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Api;

/// <summary>GET /v1/models and /v1/models/{model}: what is served, with the session's real metadata.</summary>
public static class ModelsApi
{
    public static RouteGroupBuilder MapModelsApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/models").WithTags("Models");
        group.MapGet("", ListModels)
            .WithName("ListModels")
            .WithSummary("Every served model with its inputs, outputs and heads.");
        group.MapGet("/{model}", GetModel)
            .WithName("GetModel")
            .WithSummary("One model: metadata, heads and the effective manifest.");
        return group;
    }

    internal static Ok<ModelList> ListModels(ModelRegistry registry) =>
        TypedResults.Ok(new ModelList(registry.Models.OrderBy(m => m.Name, StringComparer.Ordinal).Select(Describe).ToList()));

    internal static Results<Ok<ModelDetail>, ProblemHttpResult> GetModel(string model, ModelRegistry registry) =>
        registry.TryGetServed(model, out var served)
            ? TypedResults.Ok(new ModelDetail(Describe(served), served.Default.Manifest))
            : Problems.UnknownModel(model, registry);

    /// <summary>The model as its default version (the highest served) describes it, with every served version.</summary>
    internal static ModelSummary Describe(ServedModel served) => Describe(served.Default, served);

    private static ModelSummary Describe(LoadedModel model, ServedModel served) => new(
        model.Name,
        model.Version,
        served.RepositoryVersions,
        served.ServedVersions,
        model.Manifest.Description,
        model.Session.ExecutionProvider,
        model.Warm,
        model.Manifest.Features.Source.ManifestName(),
        model.Session.Inputs.Select(Tensor).ToList(),
        model.Session.Outputs.Select(Tensor).ToList(),
        model.Manifest.Heads.Select(h => new HeadSummary(h.Name, h.Kind.ManifestName(), h.Output, h.Served,
            model.Labels.TryGetValue(h.Name, out var labels) ? labels : null)).ToList(),
        served.Failures);

    private static TensorSummary Tensor(TensorMetadata node) => new(
        node.Name,
        node.ElementType.ToName(),
        node.Shape,
        node.Shape.Select((d, i) => d >= 0 ? (object)d : node.SymbolicDimensions[i] is { Length: > 0 } s ? s : "?").ToList());
}

public sealed record ModelList(IReadOnlyList<ModelSummary> Models);

/// <summary>
/// <c>Version</c> answers unversioned routes (the highest served); <c>Versions</c> are the version folders present,
/// <c>ServedVersions</c> those the version policy serves, <c>FailedVersions</c> those refused at the last load, with why.
/// </summary>
public sealed record ModelSummary(
    string Name,
    int Version,
    IReadOnlyList<int> Versions,
    IReadOnlyList<int> ServedVersions,
    string? Description,
    string ExecutionProvider,
    bool Ready,
    string FeatureSource,
    IReadOnlyList<TensorSummary> Inputs,
    IReadOnlyList<TensorSummary> Outputs,
    IReadOnlyList<HeadSummary> Heads,
    IReadOnlyList<VersionFailure> FailedVersions);

/// <summary>A graph input or output: -1 in <c>Shape</c> is dynamic; <c>SymbolicShape</c> names it.</summary>
public sealed record TensorSummary(string Name, string DataType, IReadOnlyList<long> Shape, IReadOnlyList<object> SymbolicShape);

public sealed record HeadSummary(string Name, string Kind, string Output, bool Served, IReadOnlyList<string>? Labels);

public sealed record ModelDetail(ModelSummary Model, ModelManifest Manifest);
