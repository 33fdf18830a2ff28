using MultiHeadServe.Features.Store;
using MultiHeadServe.Models;

namespace MultiHeadServe.Features;

/// <summary>
/// Whether the feature store answers, shared by the readiness check and the per-model readiness routes. A ping's
/// answer is reused for a second, so readiness probes and clients polling a model's readiness do not become load
/// on the store. Thread-safe.
/// </summary>
public sealed class FeatureStoreHealth(IFeatureStore store, TimeProvider time)
{
    private static readonly TimeSpan Reuse = TimeSpan.FromSeconds(1);

    // One reference, replaced whole: concurrent checks never see a report with another check's time.
    private volatile Checked? _last;

    public string Kind => store.Kind;

    public async Task<FeatureStoreReport> CheckAsync(CancellationToken cancellationToken)
    {
        if (_last is { } last && time.GetElapsedTime(last.Timestamp) < Reuse)
        {
            return last.Report;
        }

        var reachable = await store.PingAsync(cancellationToken);
        var circuit = store is ResilientFeatureStore resilient ? resilient.CircuitState.ToString() : null;
        var report = new FeatureStoreReport(store.Kind, reachable, circuit);
        _last = new Checked(report, time.GetTimestamp());
        return report;
    }

    private sealed record Checked(FeatureStoreReport Report, long Timestamp);

    /// <summary>A model is ready when it is loaded and warm and, if it reads the store, the store answers.</summary>
    public async Task<bool> IsReadyAsync(LoadedModel model, CancellationToken cancellationToken) =>
        model.Warm && (!UsesStore(model) || (await CheckAsync(cancellationToken)).Reachable);

    /// <summary>Models whose features come from the store (the others serve through a store outage).</summary>
    public static bool UsesStore(LoadedModel model) => model.Manifest.Features.Source == "store";
}

public sealed record FeatureStoreReport(string Kind, bool Reachable, string? Circuit);
