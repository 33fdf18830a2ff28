namespace MultiHeadServe.Api;

/// <summary>
/// The /v1 model routes at a given version: <c>/v1/models/{model}/versions/{version}/predict</c>, its per-head form and
/// evaluate. The same handlers as the unversioned routes, which use the highest served version; the feature-fetch
/// middleware resolves the version (404 naming it when it is not served) and holds it for the request.
/// </summary>
public static class VersionedApi
{
    public static RouteGroupBuilder MapVersionedApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/models/{model}/versions/{version}").WithTags("Versions");
        group.MapPost("/predict", PredictApi.Predict)
            .WithName("PredictVersion")
            .WithSummary("Predict with one served version of the model (see the version policy).")
            .WithFeatureRequest<PredictRequest>()
            .WithImageUploads()
            .Produces<PredictResponse>();
        group.MapPost("/heads/{head}/predict", PredictApi.PredictHead)
            .WithName("PredictHeadVersion")
            .WithSummary("One head of one served version of the model.")
            .WithFeatureRequest<PredictRequest>()
            .WithImageUploads()
            .Produces<HeadPredictResponse>();
        group.MapPost("/evaluate", EvaluateApi.Evaluate)
            .WithName("EvaluateVersion")
            .WithSummary("Per-head and combined losses of one served version of the model.")
            .WithFeatureRequest<EvaluateRequest>(EvaluateApi.EvaluationFields)
            .Produces<EvaluateResponse>();
        return group;
    }
}
