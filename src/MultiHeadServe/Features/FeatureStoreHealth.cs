using MultiHeadServe.Features.Store;

namespace MultiHeadServe.Features;

/// <summary>The feature store's part of /readyz.</summary>
public sealed class FeatureStoreHealth(IFeatureStore store)
{
    public async Task<FeatureStoreReport> CheckAsync(CancellationToken cancellationToken)
    {
        var reachable = await store.PingAsync(cancellationToken);
        var circuit = store is ResilientFeatureStore resilient ? resilient.CircuitState.ToString() : null;
        return new FeatureStoreReport(store.Kind, reachable, circuit);
    }
}

public sealed record FeatureStoreReport(string Kind, bool Reachable, string? Circuit);
