using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using MultiHeadServe.Api;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;

namespace MultiHeadServe.Features;

/// <summary>
/// On the routes that carry features (predict, evaluate): resolves the model, checks content type and
/// size, reads the body once — JSON, or on the predict routes of image models a raw image or a multipart
/// form of images (<see cref="ImageUploads"/>) — and fetches the features exactly once, then hands them to
/// the endpoint as a <see cref="FetchedFeatures"/> request feature. Whatever the number of heads asked for,
/// this is the only place features are fetched. Client mistakes end here as RFC 7807 problems.
/// </summary>
public sealed class FeatureFetchMiddleware(
    RequestDelegate next,
    ModelRegistry registry,
    FeatureFetcher fetcher,
    ServeMetrics metrics,
    Inference.InferenceService inference,
    IOptions<ServeOptions> options)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var metadata = context.GetEndpoint()?.Metadata.GetMetadata<FeatureFetchMetadata>();
        if (metadata is null)
        {
            await next(context);
            return;
        }

        var modelName = context.Request.RouteValues["model"] as string ?? "";
        var version = context.Request.RouteValues["version"] as string;
        switch (registry.TryLease(modelName, version, out var model))
        {
            case ModelLookup.UnknownModel:
                await Problems.UnknownModel(modelName, registry).ExecuteAsync(context);
                return;
            case ModelLookup.UnknownVersion:
                await Problems.UnknownVersion(modelName, version!, registry).ExecuteAsync(context);
                return;
        }

        // The request holds the version it was admitted on until it ends, even if a reload swaps in another meanwhile.
        try
        {
            await InvokeAsync(context, model, metadata);
        }
        finally
        {
            model.Release();
        }
    }

    private async Task InvokeAsync(HttpContext context, LoadedModel model, FeatureFetchMetadata metadata)
    {
        // Only served model names reach telemetry: a client's arbitrary names must not become metric labels.
        var telemetry = context.Features.Get<RequestTelemetry>();
        if (telemetry is not null)
        {
            telemetry.Model = model.Name;
        }

        // Overload is refused before the body is read and the features fetched (decoding an image costs more than
        // refusing it): the batcher knows now whether even one row would wait past the model's queue timeout.
        if (inference.RefusalFor(model) is { } refusal)
        {
            model.Statistics.RecordFailure(0);
            await Api.Problems.QueueFull(context, model.Name, refusal).ExecuteAsync(context);
            return;
        }

        FetchedFeatures features;
        try
        {
            var acceptsUploads = context.GetEndpoint()!.Metadata.GetMetadata<ImageUploadMetadata>() is not null;
            features = ImageUploads.IsUpload(context.Request.ContentType)
                ? await FetchUploadAsync(context, model, acceptsUploads)
                : await FetchAsync(context, model, metadata.EnvelopeFields, acceptsUploads);
        }
        catch (FeatureRequestException ex)
        {
            await WriteProblemAsync(context, ex);
            return;
        }

        using (features)
        {
            metrics.RecordFetch(model.Name, features.Source, features.FetchMilliseconds);
            if (telemetry is not null)
            {
                telemetry.Rows = features.Rows;
                telemetry.FetchMilliseconds = features.FetchMilliseconds;
                telemetry.FeatureFetches++;
            }

            context.Features.Set(features);
            await next(context);
        }
    }

    private async Task<FetchedFeatures> FetchAsync(HttpContext context, LoadedModel model, IReadOnlySet<string> envelope, bool acceptsUploads)
    {
        if (!RequestBody.IsJson(context.Request.ContentType))
        {
            var accepted = acceptsUploads && IsImageModel(model) ? ImageUploads.AcceptedTypes : "application/json";
            throw RequestBody.UnsupportedMediaType($"Send the body as {accepted} (got '{context.Request.ContentType ?? "none"}').");
        }

        // The parsed document reads the pooled body in place: the body goes back to the pool with the features.
        var body = await RequestBody.ReadAsync(context, options.Value.MaxRequestBytes, json: true);
        System.Text.Json.JsonDocument? document = null;
        try
        {
            document = JsonBody.Parse(body.Memory);
            var heads = RequestedHeads(context, document);
            var features = await fetcher.FetchAsync(model, document, heads, envelope, context.RequestAborted);
            features.OwnBody(body);
            return features;
        }
        catch
        {
            document?.Dispose();
            body.Dispose();
            throw;
        }
    }

    /// <summary>A raw image or a multipart form of images: each image one row, decoded once.</summary>
    private async Task<FetchedFeatures> FetchUploadAsync(HttpContext context, LoadedModel model, bool acceptsUploads)
    {
        var contentType = context.Request.ContentType!;
        if (!acceptsUploads)
        {
            throw RequestBody.UnsupportedMediaType($"This endpoint takes application/json only (got '{contentType}'); images are uploaded to the predict routes.");
        }

        if (!IsImageModel(model))
        {
            throw RequestBody.UnsupportedMediaType(
                $"Model '{model.Name}' takes its features as application/json (got '{contentType}'); image uploads are for image models.");
        }

        ImageUploads.Validate(contentType);
        var body = await RequestBody.ReadAsync(context, options.Value.MaxRequestBytes);
        try
        {
            var images = await ImageUploads.SplitAsync(contentType, body.Memory, options.Value.MaxInstances, context.RequestAborted);
            var singleRow = !RequestBody.IsMediaType(contentType, ImageUploads.Multipart);
            var features = fetcher.FetchUploads(model, images, singleRow, QueryHeads(context));
            features.OwnBody(body);
            return features;
        }
        catch
        {
            body.Dispose();
            throw;
        }
    }

    private static bool IsImageModel(LoadedModel model) => model.Manifest.Features.Source == FeatureSource.Image;

    /// <summary>"heads" from the query: comma-separated, repeatable; null when absent.</summary>
    private static List<string>? QueryHeads(HttpContext context)
    {
        var fromQuery = context.Request.Query["heads"];
        return fromQuery.Count > 0
            ? fromQuery.SelectMany(v => (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList()
            : null;
    }

    /// <summary>
    /// "heads" from the query (comma-separated, repeatable) or the body (array of names). Both at once must name the
    /// same heads: a request that says two different things is refused rather than one of them silently winning.
    /// </summary>
    private static List<string>? RequestedHeads(HttpContext context, System.Text.Json.JsonDocument document)
    {
        var fromQuery = QueryHeads(context);
        if (document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object &&
            document.RootElement.TryGetProperty("heads", out var heads))
        {
            if (heads.ValueKind != System.Text.Json.JsonValueKind.Array || heads.EnumerateArray().Any(h => h.ValueKind != System.Text.Json.JsonValueKind.String))
            {
                throw FeatureRequestException.BadField("heads", "heads must be an array of head names.");
            }

            var fromBody = heads.EnumerateArray().Select(h => h.GetString()!).ToList();
            if (fromQuery is not null && !fromQuery.ToHashSet(StringComparer.Ordinal).SetEquals(fromBody))
            {
                throw FeatureRequestException.BadField("heads",
                    $"?heads={string.Join(',', fromQuery)} and the body's heads [{string.Join(", ", fromBody)}] disagree; give the heads once.");
            }

            return fromBody;
        }

        return fromQuery;
    }

    internal static Task WriteProblemAsync(HttpContext context, FeatureRequestException ex) => Problems.From(context, ex).ExecuteAsync(context);
}
