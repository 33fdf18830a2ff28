using System.Collections.Concurrent;
using MultiHeadServe.Features;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;

namespace MultiHeadServe.Inference;

/// <summary>
/// The endpoints' way into the engine: one run per request's rows, through the model's dynamic batcher
/// when its manifest enables batching, otherwise directly. Thread-safe; owns the batchers.
/// </summary>
public sealed class InferenceService(ServeMetrics metrics, ILoggerFactory loggerFactory) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Executor>> _executors = new(StringComparer.Ordinal);

    /// <summary>Runs the request's rows once and returns every output in <paramref name="outputs"/>.</summary>
    /// <exception cref="QueueFullException">Batching is on and the model's queue is full.</exception>
    public Task<InferenceResult> RunAsync(FetchedFeatures features, IReadOnlyList<string> outputs, CancellationToken cancellationToken) =>
        RunAsync(features.Model, features.Tensor, outputs, cancellationToken);

    /// <summary>Runs whole rows of <paramref name="model"/>'s feature tensor (row-major) once.</summary>
    public Task<InferenceResult> RunAsync(LoadedModel model, ReadOnlyMemory<float> rows, IReadOnlyList<string> outputs, CancellationToken cancellationToken)
    {
        var executor = _executors.GetOrAdd(model.Name, _ => new Lazy<Executor>(() => Create(model))).Value;
        if (executor.Batcher is { } batcher)
        {
            return batcher.SubmitAsync(rows, outputs, cancellationToken);
        }

        return Task.FromResult(executor.Runner.RunAlone(rows, outputs, cancellationToken));
    }

    /// <summary>Requests waiting in a model's batcher queue (0 without batching).</summary>
    public int QueueLength(string model) =>
        _executors.TryGetValue(model, out var executor) && executor.IsValueCreated && executor.Value.Batcher is { } batcher ? batcher.QueueLength : 0;

    private Executor Create(LoadedModel model)
    {
        var runner = new ModelRunner(model, metrics);
        var batching = model.Manifest.Batching;
        var batcher = batching.Enabled && batching.MaxBatchSize > 1
            ? new DynamicBatcher(runner, loggerFactory.CreateLogger<DynamicBatcher>())
            : null;
        if (batcher is not null)
        {
            metrics.ObserveQueue(model.Name, () => batcher.QueueLength);
        }

        return new Executor(runner, batcher);
    }

    public void Dispose()
    {
        foreach (var executor in _executors.Values.Where(e => e.IsValueCreated))
        {
            executor.Value.Batcher?.Dispose();
        }
    }

    private sealed record Executor(ModelRunner Runner, DynamicBatcher? Batcher);
}
