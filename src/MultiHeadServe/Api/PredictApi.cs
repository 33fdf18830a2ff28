using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using MultiHeadServe.Features;
using MultiHeadServe.Heads;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;

namespace MultiHeadServe.Api;

/// <summary>
/// POST /v1/models/{model}/predict — every head (or a subset) from one fetch and one run.
/// POST /v1/models/{model}/heads/{head}/predict — one head, a drop-in for the per-model API it replaces.
/// </summary>
public static class PredictApi
{
    public static RouteGroupBuilder MapPredictApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/models/{model}").WithTags("Predict");
        group.MapPost("/predict", Predict)
            .WithName("Predict")
            .WithSummary("Every served head of the model (or the subset in 'heads') from one feature fetch and one run.")
            .WithDescription("The body is one row (image, features or entity keys) or {\"instances\": [rows]}. Select heads with ?heads=a,b or \"heads\": [..] in the body. " +
                ImageUploadDescription)
            .WithFeatureRequest<PredictRequest>()
            .WithImageUploads()
            .Produces<PredictResponse>();
        group.MapPost("/heads/{head}/predict", PredictHead)
            .WithName("PredictHead")
            .WithSummary("One head of the model, from the same single run.")
            .WithDescription("The body as for predict, without \"heads\". " + ImageUploadDescription)
            .WithFeatureRequest<PredictRequest>()
            .WithImageUploads()
            .Produces<HeadPredictResponse>();
        return group;
    }

    private const string ImageUploadDescription =
        "Image models also take the image itself (Content-Type image/png, image/jpeg or image/webp: one row, answered like {\"image\": ..}) " +
        "or multipart/form-data with one or more image files (one row each, in order, answered as \"predictions\" like \"instances\"); " +
        "heads then come from ?heads=.";

    /// <summary>Lets image models take the raw image or a multipart form of images on this endpoint, besides JSON (<see cref="ImageUploadMetadata"/>).</summary>
    public static RouteHandlerBuilder WithImageUploads(this RouteHandlerBuilder builder) => builder.WithMetadata(new ImageUploadMetadata());

    /// <summary>Marks an endpoint whose body the feature-fetch middleware reads, and documents that body and every error status.</summary>
    public static RouteHandlerBuilder WithFeatureRequest<TBody>(this RouteHandlerBuilder builder, params string[] envelopeFields) => builder
        // The body is documented by DemoRequestExamples rather than Accepts<T>(): routing would answer a wrong
        // content type with a bare 415 before the middleware could name the problem.
        .WithMetadata(new FeatureFetchMetadata(typeof(TBody), new HashSet<string>(FeatureFetcher.CommonEnvelope.Concat(envelopeFields), StringComparer.Ordinal)))
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
        .ProducesProblem(StatusCodes.Status429TooManyRequests)
        .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

    internal static async Task<IResult> Predict(FetchedFeatures features, HttpContext context, InferenceService inference, CancellationToken cancellationToken)
    {
        var heads = SelectHeads(features.Model, features.RequestedHeads, out var problem);
        if (problem is not null)
        {
            return problem;
        }

        var run = await RunAsync(context, features, heads!, inference, cancellationToken);
        return run.Problem ?? (IResult)new PredictJsonResult(features, heads!, run.Result!, singleHead: null);
    }

    internal static async Task<IResult> PredictHead(
        string head, FetchedFeatures features, HttpContext context, InferenceService inference, CancellationToken cancellationToken)
    {
        if (features.RequestedHeads is { Count: > 0 })
        {
            return Problems.BadRequest("heads", "The single-head route takes its head from the path; leave 'heads' out.");
        }

        var heads = SelectHeads(features.Model, [head], out var problem);
        if (problem is not null)
        {
            return problem;
        }

        var run = await RunAsync(context, features, heads!, inference, cancellationToken);
        return run.Problem ?? (IResult)new PredictJsonResult(features, heads!, run.Result!, singleHead: head);
    }

    /// <summary>The requested served heads in request order, or every served head in manifest order.</summary>
    internal static IReadOnlyList<HeadSpec>? SelectHeads(LoadedModel model, IReadOnlyList<string>? requested, out ProblemHttpResult? problem)
    {
        problem = null;
        if (requested is null || requested.Count == 0)
        {
            return model.ServedHeads;
        }

        var heads = new List<HeadSpec>(requested.Count);
        foreach (var name in requested.Distinct(StringComparer.Ordinal))
        {
            if (!model.Heads.TryGetValue(name, out var head) || !head.Served)
            {
                problem = Problems.UnknownHead(model, name);
                return null;
            }

            heads.Add(head);
        }

        return heads;
    }

    internal static async Task<(InferenceResult? Result, ProblemHttpResult? Problem)> RunAsync(
        HttpContext context, FetchedFeatures features, IReadOnlyList<HeadSpec> heads, InferenceService inference, CancellationToken cancellationToken)
    {
        // Every served head (most requests): the model's lists and label, made at load; a subset: made here.
        var model = features.Model;
        var all = ReferenceEquals(heads, model.ServedHeads);
        var telemetry = context.Features.Get<RequestTelemetry>();
        if (telemetry is not null)
        {
            telemetry.Heads = all ? model.ServedHeadNames : heads.Select(h => h.Name).ToList();
            // Every served head in another order is still the one label: metric series do not multiply by permutations.
            telemetry.HeadsLabel = heads.Count == model.ServedHeads.Count ? model.ServedHeadsLabel : string.Join('+', telemetry.Heads);
        }

        var outputs = all ? model.ServedOutputs : heads.Select(h => h.Output).Distinct(StringComparer.Ordinal).ToList();
        try
        {
            var result = await inference.RunAsync(features, outputs, cancellationToken);
            if (telemetry is not null)
            {
                telemetry.InferenceMilliseconds = result.RunMilliseconds;
                telemetry.QueueMilliseconds = result.QueueMilliseconds;
                telemetry.BatchRows = result.BatchRows;
            }

            return (result, null);
        }
        catch (QueueFullException ex)
        {
            return (null, Problems.QueueFull(context, features.Model.Name, ex.Message));
        }
    }

    internal static Timings Timings(FetchedFeatures features, InferenceResult result) => new(
        Math.Round(features.FetchMilliseconds, 3),
        Math.Round(result.QueueMilliseconds, 3),
        Math.Round(result.RunMilliseconds, 3),
        result.BatchRows);
}

/// <summary>
/// A predict body: one row, or several under <c>instances</c>. A row is <c>{"image": base64}</c> for image
/// models, or <c>{"features": [..] | {name: value}}</c> or entity keys (e.g. <c>{"user_id": "u0001", "item_id": "i0042"}</c>)
/// for tabular models.
/// </summary>
public sealed record PredictRequest(
    string? Image,
    object? Features,
    IReadOnlyList<Dictionary<string, object>>? Instances,
    IReadOnlyList<string>? Heads);

/// <param name="Model">The model's name.</param>
/// <param name="Version">The version that served the call.</param>
/// <param name="Heads">One row's decoded heads (a single-row request).</param>
/// <param name="Predictions">Per row of <c>instances</c>, in request order.</param>
/// <param name="Timings">Where the time went.</param>
public sealed record PredictResponse(
    string Model,
    int Version,
    Dictionary<string, HeadResult>? Heads,
    IReadOnlyList<RowPrediction>? Predictions,
    Timings Timings);

public sealed record RowPrediction(Dictionary<string, HeadResult> Heads);

public sealed record HeadPredictResponse(
    string Model,
    int Version,
    string Head,
    HeadResult? Prediction,
    IReadOnlyList<HeadResult>? Predictions,
    Timings Timings);

/// <param name="FetchMs">Feature fetch (decode, store lookups, parsing).</param>
/// <param name="QueueMs">Waiting in the batcher for a batch to form.</param>
/// <param name="InferenceMs">The session run that served this request.</param>
/// <param name="BatchRows">Rows in that run, this request's and any batched with it.</param>
public sealed record Timings(double FetchMs, double QueueMs, double InferenceMs, int BatchRows);
