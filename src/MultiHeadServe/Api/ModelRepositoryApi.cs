using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using MultiHeadServe.Features;
using MultiHeadServe.Models;
using MultiHeadServe.Security;

namespace MultiHeadServe.Api;

/// <summary>
/// The Open Inference Protocol's model repository extension, as Triton serves it: <c>POST /v2/repository/index</c>
/// lists every model and version with its state (and why it is unavailable), <c>…/models/{model}/load</c> loads or
/// reloads a model without a restart, <c>…/models/{model}/unload</c> stops serving it. Model control changes what the
/// service serves, so it exists only when API keys are configured (it then asks for one, like every route); without
/// keys these routes answer 404 saying how to turn them on. Errors are the protocol's <c>{"error": …}</c>.
/// </summary>
public static class ModelRepositoryApi
{
    /// <summary>Load and unload bodies are a few parameters; anything larger is a mistake.</summary>
    private const int MaxBodyBytes = 64 * 1024;

    public static RouteGroupBuilder MapModelRepositoryApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v2/repository").WithTags("Model repository (v2)");
        group.MapPost("/index", Index).WithName("V2RepositoryIndex")
            .WithSummary("Every model and version of the repository with its state (READY, UNAVAILABLE) and the reason it is unavailable.")
            .WithDescription("Body (optional): {\"ready\": true} lists only what is ready.");
        group.MapPost("/models/{model}/load", Load).WithName("V2RepositoryLoad")
            .WithSummary("Loads or reloads the model: new and changed versions are loaded, validated, warmed and swapped in; in-flight requests finish on the old ones.");
        group.MapPost("/models/{model}/unload", Unload).WithName("V2RepositoryUnload")
            .WithSummary("Stops serving the model: its requests get 404 at once; requests already running finish.");
        return group;
    }

    internal static async Task<Results<Ok<IReadOnlyList<RepositoryIndexEntry>>, JsonHttpResult<V2Error>>> Index(
        HttpContext context, ModelRepository repository, ApiKeys keys)
    {
        if (Off(keys) is { } off)
        {
            return off;
        }

        var (parameters, error) = await ReadBodyAsync(context);
        if (error is not null)
        {
            return error;
        }

        var readyOnly = false;
        if (parameters is { } root && root.TryGetProperty("ready", out var ready))
        {
            if (ready.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                return Error(StatusCodes.Status400BadRequest, "'ready' must be true or false.");
            }

            readyOnly = ready.GetBoolean();
        }

        return TypedResults.Ok(repository.Index(readyOnly));
    }

    internal static async Task<Results<Ok, JsonHttpResult<V2Error>>> Load(
        string model, HttpContext context, ModelRepository repository, ApiKeys keys, CancellationToken cancellationToken)
    {
        if (Off(keys) is { } off)
        {
            return off;
        }

        var (parameters, error) = await ReadBodyAsync(context);
        if (error is not null)
        {
            return error;
        }

        if (parameters is { } root && root.TryGetProperty("parameters", out var given) && given.ValueKind == JsonValueKind.Object &&
            UnsupportedLoadParameter(given.EnumerateObject().Select(p => p.Name)) is { } unsupported)
        {
            return Error(StatusCodes.Status400BadRequest, unsupported);
        }

        var (status, message) = await LoadAsync(model, repository, cancellationToken);
        return status == StatusCodes.Status200OK ? TypedResults.Ok() : Error(status, message!);
    }

    /// <summary>Why a load with these parameter names is refused, or null: a model loads from its folder only.</summary>
    internal static string? UnsupportedLoadParameter(IEnumerable<string> names) =>
        names.FirstOrDefault(name => name == "config" || name.StartsWith("file:", StringComparison.Ordinal)) is { } unsupported
            ? $"The load parameter '{unsupported}' is not supported: models are loaded from their folder in the repository (model.json and version folders)."
            : null;

    /// <summary>Loads or reloads the model; the HTTP status of the outcome (200, 404 or 400) and the error message.</summary>
    internal static async Task<(int Status, string? Message)> LoadAsync(string model, ModelRepository repository, CancellationToken cancellationToken)
    {
        var outcome = await repository.LoadAsync(model, cancellationToken);
        return outcome.Status switch
        {
            ModelLoadStatus.Loaded => (StatusCodes.Status200OK, null),
            ModelLoadStatus.NotFound => (StatusCodes.Status404NotFound, outcome.Reason!),
            _ => (StatusCodes.Status400BadRequest, $"failed to load '{model}': {outcome.Reason}"),
        };
    }

    /// <summary>The message of an unload of a model that is neither served nor in the repository (404).</summary>
    internal static string UnknownModel(string model) => $"No model named '{model}' is served or in the model repository.";

    internal static async Task<Results<Ok, JsonHttpResult<V2Error>>> Unload(
        string model, HttpContext context, ModelRepository repository, ApiKeys keys, CancellationToken cancellationToken)
    {
        if (Off(keys) is { } off)
        {
            return off;
        }

        var (_, error) = await ReadBodyAsync(context);
        if (error is not null)
        {
            return error;
        }

        return await repository.UnloadAsync(model, cancellationToken)
            ? TypedResults.Ok()
            : Error(StatusCodes.Status404NotFound, UnknownModel(model));
    }

    /// <summary>Why the repository API answers 404 without API keys.</summary>
    internal const string OffMessage =
        "The model repository API is off: it changes what is served, so it needs API keys (Security:ApiKeys or Security:ApiKeyFile).";

    private static JsonHttpResult<V2Error>? Off(ApiKeys keys) => keys.Enabled ? null : Error(StatusCodes.Status404NotFound, OffMessage);

    /// <summary>The optional JSON body (an object); null when there is none.</summary>
    private static async Task<(JsonElement? Root, JsonHttpResult<V2Error>? Error)> ReadBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength is 0 || (context.Request.ContentLength is null && context.Request.Headers.TransferEncoding.Count == 0))
        {
            return (null, null);
        }

        try
        {
            using var body = await RequestBody.ReadAsync(context, MaxBodyBytes, json: true);
            if (body.Memory.Length == 0)
            {
                return (null, null);
            }

            using var document = JsonBody.Parse(body.Memory);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return (null, Error(StatusCodes.Status400BadRequest, "The body must be a JSON object."));
            }

            return (document.RootElement.Clone(), null);
        }
        catch (FeatureRequestException ex)
        {
            return (null, Error(ex.Status, ex.Message));
        }
    }

    private static JsonHttpResult<V2Error> Error(int status, string message) => TypedResults.Json(new V2Error(message), statusCode: status);
}

/// <summary>The protocol's error body.</summary>
public sealed record V2Error(string Error);
