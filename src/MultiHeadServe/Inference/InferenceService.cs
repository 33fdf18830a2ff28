using System.Collections.Concurrent;
using System.Diagnostics;
using MultiHeadServe.Features;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;

namespace MultiHeadServe.Inference;

/// <summary>
/// The endpoints' way into the engine: one run per request's rows, through the model version's dynamic batcher
/// when its manifest enables batching, otherwise directly. Each loaded version has its own runner and batcher
/// (a reload with new batching settings gets a new batcher); they are disposed with the version, after its last
/// request. Thread-safe; owns the batchers.
/// </summary>
public sealed class InferenceService(ServeMetrics metrics, ILoggerFactory loggerFactory) : IDisposable
{
    private readonly ConcurrentDictionary<LoadedModel, Lazy<Executor>> _executors = new(ReferenceEqualityComparer.Instance);

    /// <summary>Runs the request's rows once and returns every output in <paramref name="outputs"/>.</summary>
    /// <exception cref="QueueFullException">Batching is on and the model's queue is full.</exception>
    public Task<InferenceResult> RunAsync(FetchedFeatures features, IReadOnlyList<string> outputs, CancellationToken cancellationToken) =>
        RunAsync(features.Model, features.Tensor, outputs, cancellationToken);

    /// <summary>
    /// Runs whole rows of <paramref name="model"/>'s feature tensor (row-major) once. The version is held for the run;
    /// callers that resolved it without a hold (<see cref="ModelRegistry.TryLease"/>) may find it unloaded meanwhile.
    /// </summary>
    /// <exception cref="FeatureRequestException">503: the version was unloaded before the run could start.</exception>
    public async Task<InferenceResult> RunAsync(LoadedModel model, ReadOnlyMemory<float> rows, IReadOnlyList<string> outputs, CancellationToken cancellationToken)
    {
        if (!model.TryAcquire())
        {
            throw new FeatureRequestException(StatusCodes.Status503ServiceUnavailable, "Model unloaded", "model",
                $"Model '{model.Name}' version {model.Version} was unloaded before this request could run; retry.", TimeSpan.FromSeconds(1));
        }

        var start = Stopwatch.GetTimestamp();
        try
        {
            var executor = _executors.GetOrAdd(model, m => new Lazy<Executor>(() => Create(m))).Value;
            var result = executor.Batcher is { } batcher
                ? await batcher.SubmitAsync(rows, outputs, cancellationToken)
                : executor.Runner.RunAlone(rows, outputs, cancellationToken);
            model.Statistics.RecordSuccess(rows.Length / model.RowLength, ModelStatistics.Nanoseconds(start, Stopwatch.GetTimestamp()));
            return result;
        }
        catch (Exception)
        {
            model.Statistics.RecordFailure(ModelStatistics.Nanoseconds(start, Stopwatch.GetTimestamp()));
            throw;
        }
        finally
        {
            model.Release();
        }
    }

    /// <summary>Why a one-row request for <paramref name="model"/> would be refused by its batcher now, or null (see <see cref="DynamicBatcher.RefusalFor"/>).</summary>
    public string? RefusalFor(LoadedModel model) =>
        _executors.TryGetValue(model, out var executor) && executor.IsValueCreated && executor.Value.Batcher is { } batcher
            ? batcher.RefusalFor(1)
            : null;

    /// <summary>Requests waiting in the batcher queues of a model's versions (0 without batching).</summary>
    public int QueueLength(string model) => _executors
        .Where(e => e.Key.Name == model && e.Value.IsValueCreated && e.Value.Value.Batcher is not null)
        .Sum(e => e.Value.Value.Batcher!.QueueLength);

    /// <summary>Batchers alive now, one per version that has served a batched request (a leak shows here).</summary>
    public int Batchers => _executors.Values.Count(e => e.IsValueCreated && e.Value.Batcher is not null);

    private Executor Create(LoadedModel model)
    {
        var runner = new ModelRunner(model, metrics);
        var batching = model.Manifest.Batching;
        var batcher = batching.Enabled && batching.MaxBatchSize > 1
            ? new DynamicBatcher(runner, loggerFactory.CreateLogger<DynamicBatcher>())
            : null;
        if (batcher is not null)
        {
            var name = model.Name;
            metrics.ObserveQueue(name, () => QueueLength(name));
        }

        // Created under a hold on the version, so it is not drained yet: this runs when its last request is done.
        model.Attach(new ExecutorRemoval(this, model, batcher));
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

    /// <summary>Forgets a drained version's executor and stops its batcher (whose queue is empty by then).</summary>
    private sealed class ExecutorRemoval(InferenceService service, LoadedModel model, DynamicBatcher? batcher) : IDisposable
    {
        public void Dispose()
        {
            service._executors.TryRemove(model, out _);
            batcher?.Dispose();
        }
    }
}
