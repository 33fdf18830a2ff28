using Microsoft.AspNetCore.Http.HttpResults;
using MultiHeadServe.Models;

namespace MultiHeadServe.Api;

/// <summary>The RFC 7807 problems the API returns, in one place so every endpoint words them alike.</summary>
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

    public static ProblemHttpResult BadRequest(string field, string detail) => TypedResults.Problem(
        statusCode: StatusCodes.Status400BadRequest,
        title: "Invalid request",
        detail: detail,
        extensions: new Dictionary<string, object?> { ["field"] = field });
}
