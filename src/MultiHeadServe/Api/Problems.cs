using Microsoft.AspNetCore.Http.HttpResults;
using MultiHeadServe.Models;

namespace MultiHeadServe.Api;

/// <summary>The RFC 7807 problems the API returns, in one place so every endpoint words them alike.</summary>
/// <summary>
/// The one place error responses are made: RFC 7807 problems with <c>field</c> (and, added for every problem where
/// problem details are written, <c>traceId</c>, plus the Open Inference Protocol's <c>error</c> on /v2: see
/// Program's AddProblemDetails). The same mistake gets the same status on /v1 and /v2; gRPC maps these statuses to
/// its codes (<see cref="Grpc.GrpcStatuses"/>).
/// </summary>
public static class Problems
{
    public static ProblemHttpResult UnknownModel(string model, ModelRegistry registry) => TypedResults.Problem(
        statusCode: StatusCodes.Status404NotFound,
        title: "Unknown model",
        detail: $"No model named '{model}' is served. Served models: {string.Join(", ", registry.All.Select(m => m.Name).Order(StringComparer.Ordinal))}.",
        extensions: new Dictionary<string, object?> { ["field"] = "model", ["model"] = model });

    /// <summary>A served model asked for at a version it does not serve.</summary>
    public static ProblemHttpResult UnknownVersion(string model, string version, ModelRegistry registry) => TypedResults.Problem(
        statusCode: StatusCodes.Status404NotFound,
        title: "Unknown version",
        detail: $"Model '{model}' does not serve version '{version}'. Served versions: " +
            $"{(registry.TryGetServed(model, out var served) ? string.Join(", ", served.ServedVersions) : "none")}.",
        extensions: new Dictionary<string, object?> { ["field"] = "version", ["model"] = model, ["version"] = version });

    public static ProblemHttpResult UnknownHead(LoadedModel model, string head) => TypedResults.Problem(
        statusCode: StatusCodes.Status404NotFound,
        title: "Unknown head",
        detail: $"Model '{model.Name}' has no served head named '{head}'. Served heads: {string.Join(", ", model.ServedHeads.Select(h => h.Name))}.",
        extensions: new Dictionary<string, object?> { ["field"] = "heads", ["model"] = model.Name, ["head"] = head });

    /// <summary>A problem with any status, naming the <paramref name="field"/> at fault.</summary>
    public static ProblemHttpResult Create(int status, string title, string detail, string field) => TypedResults.Problem(
        statusCode: status,
        title: title,
        detail: detail,
        extensions: new Dictionary<string, object?> { ["field"] = field });

    /// <summary>
    /// A request's mistake caught below the handler (body, features, store, budgets): its status, title, detail and
    /// field, and its Retry-After when the condition is passing (a queue, a store outage).
    /// </summary>
    public static ProblemHttpResult From(HttpContext context, Features.FeatureRequestException exception)
    {
        if (exception.RetryAfter is { } retryAfter)
        {
            RetryAfter(context, retryAfter);
        }

        return Create(exception.Status, exception.Title, exception.Message, exception.Field);
    }

    /// <summary>429: the model's queue is full or would keep the request past its queue timeout.</summary>
    public static ProblemHttpResult QueueFull(HttpContext context, string model, string detail)
    {
        RetryAfter(context, TimeSpan.FromSeconds(1));
        return TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Queue full", detail: detail,
            extensions: new Dictionary<string, object?> { ["field"] = "model", ["model"] = model });
    }

    /// <summary>401: API keys are configured and the request carries none that is valid.</summary>
    public static ProblemHttpResult ApiKeyRequired(HttpContext context)
    {
        context.Response.Headers.WWWAuthenticate = "Bearer";
        return Create(StatusCodes.Status401Unauthorized, "API key required",
            "This endpoint needs an API key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'.", "Authorization");
    }

    private static void RetryAfter(HttpContext context, TimeSpan after) =>
        context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static ProblemHttpResult BadRequest(string field, string detail) => TypedResults.Problem(
        statusCode: StatusCodes.Status400BadRequest,
        title: "Invalid request",
        detail: detail,
        extensions: new Dictionary<string, object?> { ["field"] = field });
}
