using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Polly.CircuitBreaker;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// Feature-store telemetry on the <c>MultiHeadServe.Features</c> meter, plus in-process counters
/// that tests and health checks can read directly.
/// </summary>
/// <remarks>
/// <para>Instruments (all tagged <c>store</c> = <c>sqlite</c> | <c>postgres</c>):</para>
/// <list type="bullet">
/// <item><c>mhs.feature_store.lookups</c> (Prometheus <c>mhs_feature_store_lookups_total</c>) — lookups sent to the
/// backing store; each retry attempt counts, a call refused by an open circuit or a store not answering does not.</item>
/// <item><c>mhs.feature_store.failures</c> — lookups that failed, tagged <c>reason</c>:
/// <c>timeout</c>, <c>transient</c> (retries exhausted), <c>circuit_open</c>, <c>not_answering</c> (refused while
/// too many abandoned calls are unanswered) or <c>error</c>.</item>
/// <item><c>mhs.feature_store.retries</c> — retries after transient failures.</item>
/// <item><c>mhs.feature_store.lookup.duration</c> (seconds) — a whole lookup as the request sees
/// it (retries included), tagged <c>outcome</c>: <c>ok</c>, <c>unavailable</c>, <c>error</c>, <c>canceled</c>.</item>
/// <item><c>mhs.feature_store.circuit.state</c> — gauge: 0 closed, 1 open, 2 half-open, 3 isolated.</item>
/// </list>
/// <para>Thread-safe; one instance per process (a singleton).</para>
/// </remarks>
public sealed class FeatureStoreMetrics : IDisposable
{
    /// <summary>The meter's name, to enable in an exporter.</summary>
    public const string MeterName = "MultiHeadServe.Features";

    private static readonly double[] DurationBucketsSeconds = [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5];

    private readonly Meter _meter;
    private readonly Counter<long> _fetches;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _retries;
    private readonly Histogram<double> _duration;
    private readonly ConcurrentDictionary<string, Func<CircuitState>> _circuits = new(StringComparer.Ordinal);
    private long _fetchCount;
    private long _failureCount;
    private long _retryCount;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/> (the host's).</summary>
    public FeatureStoreMetrics(IMeterFactory meterFactory)
        : this(meterFactory?.Create(MeterName) ?? throw new ArgumentNullException(nameof(meterFactory)))
    {
    }

    /// <summary>Creates the instruments on a meter of its own, for use without a host.</summary>
    public FeatureStoreMetrics()
        : this(new Meter(MeterName))
    {
    }

    private FeatureStoreMetrics(Meter meter)
    {
        _meter = meter;
        _fetches = meter.CreateCounter<long>(
            "mhs.feature_store.lookups", "{lookup}", "Feature lookups sent to the backing store, retry attempts included.");
        _failures = meter.CreateCounter<long>(
            "mhs.feature_store.failures", "{lookup}", "Feature lookups that failed, by reason.");
        _retries = meter.CreateCounter<long>(
            "mhs.feature_store.retries", "{retry}", "Feature lookups retried after a transient failure.");
        _duration = meter.CreateHistogram(
            "mhs.feature_store.lookup.duration",
            unit: "s",
            description: "Duration of a feature lookup, retries included.",
            tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBucketsSeconds });
        meter.CreateObservableGauge(
            "mhs.feature_store.circuit.state",
            ObserveCircuits,
            description: "Feature store circuit breaker: 0 closed, 1 open, 2 half-open, 3 isolated.");
    }

    /// <summary>Lookups sent to the backing store so far, retry attempts included.</summary>
    public long FetchCount => Interlocked.Read(ref _fetchCount);

    /// <summary>Lookups that failed so far, for any reason but caller cancellation.</summary>
    public long FailureCount => Interlocked.Read(ref _failureCount);

    /// <summary>Retries so far.</summary>
    public long RetryCount => Interlocked.Read(ref _retryCount);

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();

    internal void RecordFetch(string store)
    {
        Interlocked.Increment(ref _fetchCount);
        _fetches.Add(1, new KeyValuePair<string, object?>("store", store));
    }

    internal void RecordRetry(string store)
    {
        Interlocked.Increment(ref _retryCount);
        _retries.Add(1, new KeyValuePair<string, object?>("store", store));
    }

    internal void RecordFailure(string store, string reason)
    {
        Interlocked.Increment(ref _failureCount);
        _failures.Add(1, new KeyValuePair<string, object?>("store", store), new KeyValuePair<string, object?>("reason", reason));
    }

    internal void RecordDuration(string store, string outcome, TimeSpan elapsed) =>
        _duration.Record(
            elapsed.TotalSeconds,
            new KeyValuePair<string, object?>("store", store),
            new KeyValuePair<string, object?>("outcome", outcome));

    /// <summary>Reports <paramref name="state"/> as the circuit of <paramref name="store"/>; the latest registration wins.</summary>
    internal void ObserveCircuit(string store, Func<CircuitState> state) => _circuits[store] = state;

    private IEnumerable<Measurement<int>> ObserveCircuits() =>
        _circuits.Select(circuit => new Measurement<int>((int)circuit.Value(), new KeyValuePair<string, object?>("store", circuit.Key)));
}
