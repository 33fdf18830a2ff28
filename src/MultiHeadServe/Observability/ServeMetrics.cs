using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace MultiHeadServe.Observability;

/// <summary>
/// The service's own instruments (System.Diagnostics.Metrics, meter "MultiHeadServe"), exported by OpenTelemetry:
/// Prometheus on /metrics, OTLP when configured. Names follow OpenTelemetry's conventions (dots, base units:
/// seconds); the Prometheus exporter writes them with underscores, the unit and <c>_total</c> for counters
/// (<c>mhs.requests</c> → <c>mhs_requests_total</c>, <c>mhs.inference.duration</c> → <c>mhs_inference_duration_seconds</c>).
/// Every label is bounded: model and head names come from the repository, routes from the endpoint table.
/// Histogram buckets are given with each instrument (advice), so no exporter view is needed.
/// </summary>
public sealed class ServeMetrics : IDisposable
{
    public const string MeterName = "MultiHeadServe";

    /// <summary>Latencies from 50 µs (a run of a small model) to 10 s (a request's whole budget).</summary>
    private static readonly double[] SecondsBuckets =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Whole rows, up to the largest batch a manifest may ask for.</summary>
    private static readonly long[] RowBuckets = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512, 1024];

    private static readonly long[] FetchBuckets = [0, 1, 2, 3, 4, 8];

    private static readonly double[] LossBuckets = [0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 100];

    // Boxed once: a status tag would otherwise box an int on every request.
    private static readonly object[] StatusCodes = [.. Enumerable.Range(0, 600).Select(code => (object)code)];

    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _requestDuration;
    private readonly Histogram<long> _requestFetches;
    private readonly Counter<long> _fetches;
    private readonly Histogram<double> _fetchDuration;
    private readonly Counter<long> _runs;
    private readonly Histogram<long> _batchRows;
    private readonly Histogram<double> _queueDuration;
    private readonly Histogram<double> _inferenceDuration;
    private readonly Histogram<double> _headLoss;
    private readonly Counter<long> _modelLoads;
    private readonly ConcurrentDictionary<string, Func<int>> _queues = new(StringComparer.Ordinal);
    private long _fetchTotal;
    private long _runTotal;
    private long _requestTotal;

    public ServeMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        _meter = meterFactory.Create(MeterName);
        _requests = _meter.CreateCounter<long>("mhs.requests", "{request}",
            "Model requests (v1 predict, per-head predict, evaluate; v2 infer), by model, route, head set and status.");
        _requestDuration = _meter.CreateHistogram("mhs.request.duration", "s",
            "A model request from its first byte to its last, by model and route.", null, Seconds());
        _requestFetches = _meter.CreateHistogram("mhs.request.feature_fetches", "{fetch}",
            "Feature fetches per model request: 1 whatever the number of heads and rows.", null, new InstrumentAdvice<long> { HistogramBucketBoundaries = FetchBuckets });
        _fetches = _meter.CreateCounter<long>("mhs.feature.fetches", "{fetch}", "Feature fetches, by model and source.");
        _fetchDuration = _meter.CreateHistogram("mhs.feature.fetch.duration", "s", "One request's feature fetch (store lookup or image decode), by model and source.", null, Seconds());
        _runs = _meter.CreateCounter<long>("mhs.session.runs", "{run}", "ONNX Runtime session runs, by model.");
        _batchRows = _meter.CreateHistogram("mhs.batch.rows", "{row}", "Rows per session run, by model.", null, new InstrumentAdvice<long> { HistogramBucketBoundaries = RowBuckets });
        _queueDuration = _meter.CreateHistogram("mhs.queue.duration", "s", "Time a request waited in its model's batch queue, by model.", null, Seconds());
        _inferenceDuration = _meter.CreateHistogram("mhs.inference.duration", "s", "One session run, by model.", null, Seconds());
        _headLoss = _meter.CreateHistogram("mhs.head.loss", null, "Per-head loss of /evaluate calls, by model and head.", null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = LossBuckets });
        _modelLoads = _meter.CreateCounter<long>("mhs.model.loads", "{load}", "Model versions loaded or refused, by model and outcome.");
        _meter.CreateObservableGauge("mhs.queue.depth", ObserveQueues, "{request}", "Requests waiting in a model's batch queue.");
    }

    /// <summary>Feature fetches since start (all models).</summary>
    public long FeatureFetches => Interlocked.Read(ref _fetchTotal);

    /// <summary>Session runs since start (all models).</summary>
    public long SessionRuns => Interlocked.Read(ref _runTotal);

    /// <summary>Model requests since start.</summary>
    public long Requests => Interlocked.Read(ref _requestTotal);

    /// <summary>One finished model request, from what it recorded along the way.</summary>
    public void RecordRequest(RequestTelemetry telemetry, string model, string route, int status, double seconds)
    {
        ArgumentNullException.ThrowIfNull(telemetry);
        Interlocked.Increment(ref _requestTotal);
        var statusTag = (uint)status < (uint)StatusCodes.Length ? StatusCodes[status] : status;
        _requests.Add(1, new("model", model), new("route", route), new("heads", telemetry.HeadsLabel ?? ""), new("status", statusTag));
        _requestDuration.Record(seconds, new("model", model), new("route", route));
        if (telemetry.Model is not null)
        {
            _requestFetches.Record(telemetry.FeatureFetches, new KeyValuePair<string, object?>("model", model));
        }
    }

    public void RecordFetch(string model, string source, double milliseconds)
    {
        Interlocked.Increment(ref _fetchTotal);
        _fetches.Add(1, new("model", model), new("source", source));
        _fetchDuration.Record(milliseconds / 1000, new("model", model), new("source", source));
    }

    public void RecordRun(string model, int rows, double milliseconds)
    {
        Interlocked.Increment(ref _runTotal);
        var tag = new KeyValuePair<string, object?>("model", model);
        _runs.Add(1, tag);
        _batchRows.Record(rows, tag);
        _inferenceDuration.Record(milliseconds / 1000, tag);
    }

    public void RecordQueueWait(string model, double milliseconds) =>
        _queueDuration.Record(milliseconds / 1000, new KeyValuePair<string, object?>("model", model));

    public void RecordHeadLoss(string model, string head, double loss) =>
        _headLoss.Record(loss, new("model", model), new("head", head));

    /// <summary>A model version was loaded (<c>loaded</c>) or refused (<c>failed</c>).</summary>
    public void RecordModelLoad(string model, string outcome) =>
        _modelLoads.Add(1, new("model", model), new("outcome", outcome));

    /// <summary>Reports <paramref name="depth"/> as the queue depth of <paramref name="model"/>; the latest registration wins.</summary>
    public void ObserveQueue(string model, Func<int> depth) => _queues[model] = depth;

    private IEnumerable<Measurement<int>> ObserveQueues() =>
        _queues.Select(queue => new Measurement<int>(queue.Value(), new KeyValuePair<string, object?>("model", queue.Key)));

    private static InstrumentAdvice<double> Seconds() => new() { HistogramBucketBoundaries = SecondsBuckets };

    public void Dispose() => _meter.Dispose();
}
