using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using MultiHeadServe.Features;
using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;

namespace MultiHeadServe.Api;

/// <summary>
/// POST /v1/models/{model}/evaluate — per-head losses and metrics on labelled rows, and the combined
/// multi-task loss (sum, α-weighted, per-head weights, or the uncertainty weighting the model was trained
/// with), from one feature fetch and one run.
/// </summary>
public static class EvaluateApi
{
    internal static readonly string[] EvaluationFields = ["labels", "combination", "alpha", "weights", "losses"];

    public static RouteGroupBuilder MapEvaluateApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/models/{model}").WithTags("Evaluate");
        group.MapPost("/evaluate", Evaluate)
            .WithName("Evaluate")
            .WithSummary("Each head's loss and metrics on labelled rows, and the combined multi-task loss, from one run.")
            .WithDescription("Rows as for predict, plus \"labels\": {head: values | class names}. Optional: \"heads\" (subset, in α order), " +
                "\"combination\" (sum | weighted | uncertainty), \"alpha\" (two heads: L = α·L_a + (1−α)·L_b), \"weights\" {head: w}, \"losses\" {head: loss}.")
            .WithFeatureRequest<EvaluateRequest>(EvaluationFields)
            .Produces<EvaluateResponse>();
        return group;
    }

    internal static async Task<Results<Ok<EvaluateResponse>, ProblemHttpResult>> Evaluate(
        FetchedFeatures features, HttpContext context, InferenceService inference, ServeMetrics metrics, CancellationToken cancellationToken)
    {
        var model = features.Model;
        // Evaluate takes JSON only (labels ride in the body): the middleware answers an upload here with 415.
        var root = features.Document!.RootElement;
        try
        {
            var labels = ReadLabels(root);
            foreach (var head in labels.Keys.Where(h => !model.Heads.ContainsKey(h)))
            {
                return Problems.BadRequest($"labels.{head}", $"'{head}' is not a head of model '{model.Name}' (heads: {string.Join(", ", model.Heads.Keys)}).");
            }
            var combination = ReadCombination(root, model);
            var evaluator = ReadLossOverrides(root, model) ?? model.Evaluator;
            var heads = features.RequestedHeads is { Count: > 0 } requested ? requested : evaluator.HeadNames.Where(labels.ContainsKey).ToList();
            if (heads.Count == 0)
            {
                return Problems.BadRequest("labels", $"Give labels for at least one head: {string.Join(", ", evaluator.HeadNames)}.");
            }

            foreach (var head in heads)
            {
                if (!model.Heads.ContainsKey(head))
                {
                    return Problems.UnknownHead(model, head);
                }
            }

            var run = await PredictApi.RunAsync(context, features, heads.Select(h => model.Heads[h]).ToList(), inference, cancellationToken);
            if (run.Problem is not null)
            {
                return run.Problem;
            }

            var result = evaluator.Evaluate(run.Result!.Outputs, labels, heads, combination);
            foreach (var (head, evaluation) in result.Heads)
            {
                metrics.RecordHeadLoss(model.Name, head, evaluation.Loss);
            }

            return TypedResults.Ok(new EvaluateResponse(model.Name, model.Version, result.Loss, result.Combination, result.Alpha, result.Heads,
                PredictApi.Timings(features, run.Result)));
        }
        catch (EvaluationRequestException ex)
        {
            return Problems.BadRequest(ex.Field, ex.Message);
        }
    }

    private static Dictionary<string, HeadLabels> ReadLabels(JsonElement root)
    {
        if (!root.TryGetProperty("labels", out var labels) || labels.ValueKind != JsonValueKind.Object)
        {
            throw new EvaluationRequestException("labels", "Evaluation needs \"labels\": an object of head name → labels (numbers, rows of numbers, or class names).");
        }

        return labels.EnumerateObject().ToDictionary(p => p.Name, p => HeadLabels.FromJson(p.Name, p.Value), StringComparer.Ordinal);
    }

    private static LossCombination? ReadCombination(JsonElement root, LoadedModel model)
    {
        var hasAlpha = root.TryGetProperty("alpha", out var alpha);
        var hasWeights = root.TryGetProperty("weights", out var weights);
        var name = root.TryGetProperty("combination", out var c) ? c.ValueKind == JsonValueKind.String ? c.GetString() : throw new EvaluationRequestException("combination", "combination must be sum, weighted or uncertainty.") : null;
        if (hasAlpha && hasWeights)
        {
            throw new EvaluationRequestException("alpha", "Give either alpha (two heads) or weights, not both.");
        }

        if (hasAlpha)
        {
            if (alpha.ValueKind != JsonValueKind.Number)
            {
                throw new EvaluationRequestException("alpha", "alpha must be a number between 0 and 1.");
            }

            return LossCombination.WithAlpha(alpha.GetDouble());
        }

        if (hasWeights)
        {
            if (weights.ValueKind != JsonValueKind.Object || weights.EnumerateObject().Any(p => p.Value.ValueKind != JsonValueKind.Number))
            {
                throw new EvaluationRequestException("weights", "weights must be an object of head name → number.");
            }

            return LossCombination.WithWeights(weights.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble(), StringComparer.Ordinal));
        }

        return name switch
        {
            null => null,
            LossCombination.SumName => LossCombination.Sum,
            LossCombination.UncertaintyName when model.Manifest.Loss?.LogVariances is { } logVariances => LossCombination.WithLogVariances(logVariances),
            LossCombination.UncertaintyName => throw new EvaluationRequestException("combination", $"Model '{model.Name}' has no learned log-variances in its manifest."),
            LossCombination.WeightedName => throw new EvaluationRequestException("combination", "weighted needs alpha or weights."),
            _ => throw new EvaluationRequestException("combination", $"'{name}' is not sum, weighted or uncertainty."),
        };
    }

    private static MultiTaskEvaluator? ReadLossOverrides(JsonElement root, LoadedModel model)
    {
        if (!root.TryGetProperty("losses", out var losses))
        {
            return null;
        }

        if (losses.ValueKind != JsonValueKind.Object || losses.EnumerateObject().Any(p => p.Value.ValueKind != JsonValueKind.String))
        {
            throw new EvaluationRequestException("losses", "losses must be an object of head name → loss name.");
        }

        var overrides = losses.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!, StringComparer.Ordinal);
        foreach (var head in overrides.Keys.Where(h => !model.Heads.ContainsKey(h)))
        {
            throw new EvaluationRequestException($"losses.{head}", $"'{head}' is not a head of model '{model.Name}'.");
        }

        var heads = model.Manifest.Heads.Select(h => overrides.TryGetValue(h.Name, out var loss) ? h with { Loss = loss } : h).ToList();
        try
        {
            return MultiTaskEvaluator.Create(heads, model.Manifest.Loss, model.Labels);
        }
        catch (HeadSpecException ex)
        {
            throw new EvaluationRequestException("losses", ex.Message);
        }
    }
}

/// <summary>An evaluation body: rows as for predict, and labels per head.</summary>
public sealed record EvaluateRequest(
    string? Image,
    object? Features,
    IReadOnlyList<Dictionary<string, object>>? Instances,
    Dictionary<string, object> Labels,
    IReadOnlyList<string>? Heads,
    string? Combination,
    double? Alpha,
    Dictionary<string, double>? Weights,
    Dictionary<string, string>? Losses);

public sealed record EvaluateResponse(
    string Model,
    int Version,
    double Loss,
    string Combination,
    double? Alpha,
    IReadOnlyDictionary<string, HeadEvaluationResult> Heads,
    Timings Timings);
