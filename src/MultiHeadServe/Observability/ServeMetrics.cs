using System.Diagnostics.Metrics;

namespace MultiHeadServe.Observability;

/// <summary>
/// The service's own instruments (System.Diagnostics.Metrics, meter "MultiHeadServe"), exported on /metrics.
/// The per-model counters also keep plain totals so tests and /metrics can prove "one fetch, one run per call".
/// </summary>
public sealed class ServeMetrics : IDisposable
{
    public const string MeterName = "MultiHeadServe";

    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _fetches;
    private readonly Counter<long> _runs;
    private readonly Histogram<double> _batchSize;
    private readonly Histogram<double> _fetchMs;
    private readonly Histogram<double> _inferenceMs;
    private readonly Histogram<double> _headLoss;
    private long _fetchTotal;
    private long _runTotal;
    private long _requestTotal;

    public ServeMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _requests = _meter.CreateCounter<long>("mhs_requests_total", description: "Predict and evaluate calls, by model, route and status.");
        _fetches = _meter.CreateCounter<long>("mhs_feature_fetches_total", description: "Feature fetches (one per predict call), by model and source.");
        _runs = _meter.CreateCounter<long>("mhs_session_runs_total", description: "ONNX Runtime session runs, by model.");
        _batchSize = _meter.CreateHistogram<double>("mhs_batch_rows", description: "Rows per session run, by model.");
        _fetchMs = _meter.CreateHistogram<double>("mhs_feature_fetch_ms", "ms", "Feature fetch time per call, by model and source.");
        _inferenceMs = _meter.CreateHistogram<double>("mhs_inference_ms", "ms", "Session run time, by model.");
        _headLoss = _meter.CreateHistogram<double>("mhs_head_loss", description: "Per-head loss of /evaluate calls, by model and head.");
        // Lets a load test divide managed allocations by requests without attaching a profiler.
        _meter.CreateObservableCounter("mhs_process_allocated_bytes_total", () => GC.GetTotalAllocatedBytes(), "By", "Managed bytes allocated by the process since start.");
        _meter.CreateObservableCounter("mhs_process_cpu_seconds_total", () => Environment.CpuUsage.TotalTime.TotalSeconds, "s", "CPU time used by the process since start.");
    }

    /// <summary>Feature fetches since start (all models).</summary>
    public long FeatureFetches => Interlocked.Read(ref _fetchTotal);

    /// <summary>Session runs since start (all models).</summary>
    public long SessionRuns => Interlocked.Read(ref _runTotal);

    /// <summary>Predict and evaluate calls since start.</summary>
    public long Requests => Interlocked.Read(ref _requestTotal);

    public void RecordRequest(string model, string route, int status)
    {
        Interlocked.Increment(ref _requestTotal);
        _requests.Add(1, new("model", model), new("route", route), new("status", status));
    }

    public void RecordFetch(string model, string source, double milliseconds)
    {
        Interlocked.Increment(ref _fetchTotal);
        _fetches.Add(1, new KeyValuePair<string, object?>("model", model), new("source", source));
        _fetchMs.Record(milliseconds, new KeyValuePair<string, object?>("model", model), new("source", source));
    }

    public void RecordRun(string model, int rows, double milliseconds)
    {
        Interlocked.Increment(ref _runTotal);
        _runs.Add(1, new KeyValuePair<string, object?>("model", model));
        _batchSize.Record(rows, new KeyValuePair<string, object?>("model", model));
        _inferenceMs.Record(milliseconds, new KeyValuePair<string, object?>("model", model));
    }

    public void RecordHeadLoss(string model, string head, double loss) =>
        _headLoss.Record(loss, new KeyValuePair<string, object?>("model", model), new("head", head));

    public void Dispose() => _meter.Dispose();
}
