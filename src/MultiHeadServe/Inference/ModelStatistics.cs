using System.Collections.Concurrent;
using System.Diagnostics;

namespace MultiHeadServe.Inference;

/// <summary>
/// What one loaded model version has done since it was loaded, in the terms of Triton's statistics extension (served
/// on <c>/v2/models/{model}/stats</c> and gRPC <c>ModelStatistics</c>): requests that succeeded and failed with their
/// time in the engine, their time queued, and per session run the time to prepare the input tensor, to run the
/// session and to split its outputs per request, overall and per batch size. A client samples it twice and divides
/// the differences for averages over the interval, as Triton's perf_analyzer does. Lock-free: a handful of
/// interlocked additions per request.
/// </summary>
public sealed class ModelStatistics
{
    private static readonly double NanosecondsPerTick = 1e9 / Stopwatch.Frequency;

    private readonly Duration _success = new();
    private readonly Duration _fail = new();
    private readonly Duration _queue = new();
    private readonly Duration _computeInput = new();
    private readonly Duration _computeInfer = new();
    private readonly Duration _computeOutput = new();
    private readonly ConcurrentDictionary<int, BatchSizeTotals> _batches = new();
    private long _inferenceCount;
    private long _executionCount;
    private long _lastInferenceMilliseconds;

    /// <summary>Nanoseconds in a <see cref="Stopwatch"/> interval.</summary>
    public static long Nanoseconds(long startTimestamp, long endTimestamp) => (long)((endTimestamp - startTimestamp) * NanosecondsPerTick);

    /// <summary>
    /// A request the engine answered with <paramref name="rows"/> rows, <paramref name="nanoseconds"/> after it was handed
    /// to it (queue and run included).
    /// </summary>
    public void RecordSuccess(int rows, long nanoseconds)
    {
        _success.Add(1, nanoseconds);
        Interlocked.Add(ref _inferenceCount, rows);
        Touch();
    }

    /// <summary>A request the engine refused or failed: a full queue, its queue timeout, a cancelled or failed run.</summary>
    public void RecordFailure(long nanoseconds)
    {
        _fail.Add(1, nanoseconds);
        Touch();
    }

    /// <summary>One request's wait in the batch queue (0 for a request that ran at once or without batching).</summary>
    public void RecordQueue(long nanoseconds) => _queue.Add(1, nanoseconds);

    /// <summary>
    /// One session run of <paramref name="batchSize"/> rows: stacking the requests' rows, the run, and splitting its
    /// outputs per request.
    /// </summary>
    public void RecordExecution(int batchSize, long inputNanoseconds, long inferNanoseconds, long outputNanoseconds)
    {
        Interlocked.Increment(ref _executionCount);
        var totals = _batches.GetOrAdd(batchSize, static _ => new BatchSizeTotals());
        totals.Input.Add(1, inputNanoseconds);
        totals.Infer.Add(1, inferNanoseconds);
        totals.Output.Add(1, outputNanoseconds);
    }

    /// <summary>
    /// The compute time of <paramref name="requests"/> requests served together: each of them spent the whole of each
    /// phase, so each phase counts once per request (Triton's per-request accounting).
    /// </summary>
    public void RecordCompute(int requests, long inputNanoseconds, long inferNanoseconds, long outputNanoseconds)
    {
        _computeInput.Add(requests, requests * inputNanoseconds);
        _computeInfer.Add(requests, requests * inferNanoseconds);
        _computeOutput.Add(requests, requests * outputNanoseconds);
    }

    /// <summary>The totals now (each field read on its own: a request in progress may show in one and not yet in another).</summary>
    public ModelStatisticsSnapshot Snapshot() => new(
        Interlocked.Read(ref _lastInferenceMilliseconds),
        Interlocked.Read(ref _inferenceCount),
        Interlocked.Read(ref _executionCount),
        _success.Read(),
        _fail.Read(),
        _queue.Read(),
        _computeInput.Read(),
        _computeInfer.Read(),
        _computeOutput.Read(),
        [.. _batches.OrderBy(b => b.Key).Select(b => new BatchSizeStatistics(b.Key, b.Value.Input.Read(), b.Value.Infer.Read(), b.Value.Output.Read()))]);

    private void Touch() => Interlocked.Exchange(ref _lastInferenceMilliseconds, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    private sealed class Duration
    {
        private long _count;
        private long _nanoseconds;

        public void Add(long count, long nanoseconds)
        {
            Interlocked.Add(ref _count, count);
            Interlocked.Add(ref _nanoseconds, Math.Max(0, nanoseconds));
        }

        public DurationStatistic Read() => new(Interlocked.Read(ref _count), Interlocked.Read(ref _nanoseconds));
    }

    private sealed class BatchSizeTotals
    {
        public Duration Input { get; } = new();

        public Duration Infer { get; } = new();

        public Duration Output { get; } = new();
    }
}

/// <summary>A count of events and their total duration in nanoseconds.</summary>
public readonly record struct DurationStatistic(long Count, long Nanoseconds);

/// <summary>The session runs of one batch size: how many, and their time in each phase.</summary>
public sealed record BatchSizeStatistics(int BatchSize, DurationStatistic ComputeInput, DurationStatistic ComputeInfer, DurationStatistic ComputeOutput);

/// <summary>
/// A version's statistics at one moment. <paramref name="InferenceCount"/> counts rows of successful requests,
/// <paramref name="ExecutionCount"/> session runs; <paramref name="LastInferenceMilliseconds"/> is the last request's
/// time (Unix milliseconds, 0 before the first).
/// </summary>
public sealed record ModelStatisticsSnapshot(
    long LastInferenceMilliseconds,
    long InferenceCount,
    long ExecutionCount,
    DurationStatistic Success,
    DurationStatistic Fail,
    DurationStatistic Queue,
    DurationStatistic ComputeInput,
    DurationStatistic ComputeInfer,
    DurationStatistic ComputeOutput,
    IReadOnlyList<BatchSizeStatistics> Batches);
