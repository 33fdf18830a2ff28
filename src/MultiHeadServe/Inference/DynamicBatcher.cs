using System.Diagnostics;
using MultiHeadServe.Models;

namespace MultiHeadServe.Inference;

/// <summary>
/// Triton's dynamic batcher for one model: concurrent requests are stacked into one tensor of at most
/// <c>maxBatchSize</c> rows as <see cref="BatchFormation"/> decides (a preferred size at once, otherwise
/// wait up to <c>maxQueueDelayMicroseconds</c> from the oldest request's arrival for a full batch);
/// at most <c>instances</c> batches run at once. The queue is bounded (<c>maxQueueSize</c> requests): a full
/// queue refuses at once. A request cancelled while queued is unlinked from the queue and costs nothing.
/// <para>
/// Queued batches run on dedicated worker threads, one per instance: a session run blocks its thread for the
/// whole run, which should not come out of the thread pool that serves HTTP. The one exception is the case
/// where batching has nothing to offer: with no queue delay, a request that finds the queue empty and an
/// instance idle runs at once on its own thread, as it would without batching (at most <c>instances</c>
/// such runs at a time); only requests arriving while the instances are busy queue up and run together.
/// </para>
/// </summary>
public sealed class DynamicBatcher : IDisposable
{
    private readonly ModelRunner _runner;
    private readonly BatchingSpec _spec;
    private readonly HashSet<int> _preferred;
    private readonly TimeSpan _maxDelay;
    private readonly LinkedList<WorkItem> _queue = new();
    private readonly object _gate = new();
    private readonly Thread[] _workers;
    private readonly ILogger _logger;
    private readonly int _smallestPreferred;
    private readonly long _queueTimeoutTicks;
    private readonly Timer? _expiry;
    private double _runMillisecondsEstimate;
    private int _queuedRows;
    private int _busyInstances;
    private bool _stopping;

    public DynamicBatcher(ModelRunner runner, ILogger logger)
    {
        _runner = runner;
        _logger = logger;
        _spec = runner.Model.Manifest.Batching;
        _preferred = [.. _spec.PreferredBatchSizes];
        _smallestPreferred = _preferred.Count > 0 ? _preferred.Min() : int.MaxValue;
        _maxDelay = TimeSpan.FromTicks(_spec.MaxQueueDelayMicroseconds * TimeSpan.TicksPerMicrosecond);
        _queueTimeoutTicks = _spec.QueueTimeoutMicroseconds <= 0 ? long.MaxValue : _spec.QueueTimeoutMicroseconds * Stopwatch.Frequency / 1_000_000;
        _expiry = _queueTimeoutTicks == long.MaxValue ? null : new Timer(static state => ((DynamicBatcher)state!).ExpireOnTime(), this, Timeout.Infinite, Timeout.Infinite);
        _workers = Enumerable.Range(0, _spec.Instances).Select(i => new Thread(Work)
        {
            IsBackground = true,
            Name = $"batcher-{runner.Model.Name}-{i}",
        }).ToArray();
        foreach (var worker in _workers)
        {
            worker.Start();
        }
    }

    /// <summary>Requests waiting in the queue now.</summary>
    public int QueueLength
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>
    /// Why a request of <paramref name="rows"/> arriving now would be refused (the queue full, or a wait past the queue
    /// timeout), or null: asked before a request's body is read and its features fetched, so a refusal costs nothing.
    /// </summary>
    public string? RefusalFor(int rows)
    {
        lock (_gate)
        {
            return RunsAtOnce ? null : Refusal(rows);
        }
    }

    /// <summary>An idle instance and no delay to wait out: a request arriving now runs at once. Called under the gate.</summary>
    private bool RunsAtOnce => _maxDelay == TimeSpan.Zero && _queue.Count == 0 && _busyInstances < _spec.Instances;

    /// <summary>Why a request of <paramref name="rows"/> that would queue is refused now, or null. Called under the gate.</summary>
    private string? Refusal(int rows) =>
        _queue.Count >= _spec.MaxQueueSize
            ? $"Model '{_runner.Model.Name}' has {_spec.MaxQueueSize} requests queued already; retry shortly."
            // Refused now rather than after waiting: the client can retry elsewhere while it still has time.
            : ExpectedWaitTicks(rows) > _queueTimeoutTicks
                ? $"Model '{_runner.Model.Name}' would keep this request queued longer than its queue timeout ({_spec.QueueTimeoutMicroseconds / 1000.0:0.#} ms); retry shortly."
                : null;

    /// <summary>Queues <paramref name="rows"/> (whole rows of the model's feature tensor) for the next batch.</summary>
    /// <exception cref="QueueFullException">The queue holds <c>maxQueueSize</c> requests already.</exception>
    public Task<InferenceResult> SubmitAsync(ReadOnlyMemory<float> rows, IReadOnlyList<string> outputs, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        WorkItem? item = null; // stays null for a request run at once
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (RunsAtOnce)
            {
                // An idle instance and no delay to wait out: Triton sends this request alone, now. It runs on
                // this thread, because handing it to a worker would cost two thread switches and gain nothing.
                // Requests that arrive while the instances are busy queue and run together, as below.
                _busyInstances++;
            }
            else
            {
                var requestRows = rows.Length / _runner.Model.RowLength;
                if (Refusal(requestRows) is { } refusal)
                {
                    throw new QueueFullException(refusal);
                }

                item = new WorkItem(rows, requestRows, outputs);
                item.Node = _queue.AddLast(item);
                _queuedRows += item.Rows;
                if (_queue.Count == 1)
                {
                    ArmExpiry();
                }

                // Wake a worker only when it may have something to do now: an instance is free and there is a
                // first request to start the delay clock for, or enough rows for a preferred or a full batch.
                // Waking it on every arrival costs a context switch per request for nothing; its timed wait
                // already ends at the oldest request's deadline, and a finishing run wakes it too.
                if (_busyInstances < _spec.Instances &&
                    (_queue.Count == 1 || _queuedRows >= _spec.MaxBatchSize || _queuedRows >= _smallestPreferred))
                {
                    Monitor.Pulse(_gate);
                }
            }
        }

        if (item is null)
        {
            // Exactly what the model does without batching, holding one of the instances meanwhile.
            try
            {
                return Task.FromResult(_runner.RunAlone(rows, outputs, cancellationToken));
            }
            finally
            {
                ReleaseInstance();
            }
        }

        if (cancellationToken.CanBeCanceled)
        {
            item.Registration = cancellationToken.UnsafeRegister(static (state, token) =>
            {
                var (batcher, queued) = ((DynamicBatcher, WorkItem))state!;
                batcher.Cancel(queued, token);
            }, (this, item));
        }

        return item.Completion.Task;
    }

    private void Cancel(WorkItem item, CancellationToken token)
    {
        lock (_gate)
        {
            if (item.Node?.List is null)
            {
                return; // already taken into a batch: the run goes on for the others
            }

            _queue.Remove(item.Node);
            _queuedRows -= item.Rows;
            item.Node = null;
        }

        item.Completion.TrySetCanceled(token);
    }

    private void Work()
    {
        var batch = new List<WorkItem>(_spec.MaxBatchSize);
        while (true)
        {
            batch.Clear();
            if (!Collect(batch))
            {
                return;
            }

            try
            {
                Run(batch);
            }
            finally
            {
                ReleaseInstance();
            }
        }
    }

    /// <summary>A run is over: its instance is free for what queued meanwhile.</summary>
    private void ReleaseInstance()
    {
        lock (_gate)
        {
            _busyInstances--;
            if (_queue.Count > 0)
            {
                Monitor.Pulse(_gate);
            }
        }
    }

    /// <summary>
    /// Waits for a first request, then for the batch to fill, reach a preferred size, or for the oldest
    /// request to have waited the maximum delay. Requests stay in the queue until the batch is dispatched,
    /// so one cancelled while the batch forms is simply unlinked and never runs.
    /// </summary>
    private bool Collect(List<WorkItem> batch)
    {
        lock (_gate)
        {
            while (true)
            {
                while (_queue.Count == 0 || _busyInstances >= _spec.Instances)
                {
                    if (_stopping && _queue.Count == 0)
                    {
                        return false;
                    }

                    Monitor.Wait(_gate);
                }

                var now = Stopwatch.GetTimestamp();
                ExpireOverdue(now);
                if (_queue.Count == 0)
                {
                    continue;
                }

                var deadline = _queue.First!.Value.EnqueuedTimestamp + (long)(_maxDelay.TotalSeconds * Stopwatch.Frequency);
                var remaining = TimeSpan.FromSeconds((double)(deadline - now) / Stopwatch.Frequency);
                var take = BatchFormation.Take(_queue.Select(static item => item.Rows), _spec.MaxBatchSize, _preferred,
                    delayExpired: remaining <= TimeSpan.Zero || _stopping);
                if (take > 0)
                {
                    _busyInstances++;
                    for (var i = 0; i < take; i++)
                    {
                        var node = _queue.First!;
                        _queue.RemoveFirst();
                        _queuedRows -= node.Value.Rows;
                        node.Value.Node = null;
                        node.Value.DequeuedTimestamp = now;
                        batch.Add(node.Value);
                    }

                    if (_queue.Count > 0 && _busyInstances < _spec.Instances)
                    {
                        // What is left starts the next batch: an idle instance can take it while this one runs.
                        Monitor.Pulse(_gate);
                    }

                    return true;
                }

                // Monitor waits count whole milliseconds and a wait of 0 returns at once: round up, or the last
                // fraction of a millisecond before every deadline becomes a busy loop that burns a core.
                Monitor.Wait(_gate, Math.Max(1, (int)Math.Ceiling(remaining.TotalMilliseconds)));
            }
        }
    }

    /// <summary>
    /// How long a request of <paramref name="rows"/> arriving now would wait, from the recent run time: the batches
    /// ahead of it (and it), spread over the instances. Zero while no run has been timed yet. Called under the gate.
    /// </summary>
    private long ExpectedWaitTicks(int rows)
    {
        if (_queueTimeoutTicks == long.MaxValue || _runMillisecondsEstimate <= 0)
        {
            return 0;
        }

        var batchesAhead = (int)Math.Ceiling((double)(_queuedRows + rows) / _spec.MaxBatchSize);
        var rounds = Math.Ceiling((double)batchesAhead / _spec.Instances);
        return (long)(rounds * _runMillisecondsEstimate * Stopwatch.Frequency / 1000);
    }

    /// <summary>
    /// Arms the timer for the moment the oldest queued request reaches its queue timeout. The workers expire requests
    /// too, but only when an instance is free to take the next batch: behind runs of several seconds (a request of
    /// hundreds of images) a queued request waited for them, past its timeout. Called under the gate.
    /// </summary>
    private void ArmExpiry()
    {
        if (_expiry is null || _queue.First is not { } first)
        {
            return;
        }

        var ticks = first.Value.EnqueuedTimestamp + _queueTimeoutTicks - Stopwatch.GetTimestamp();
        // A millisecond late at most: the request is then strictly past its timeout, as ExpireOverdue asks.
        _expiry.Change(Math.Max(1, (long)Math.Ceiling(ticks * 1000.0 / Stopwatch.Frequency) + 1), Timeout.Infinite);
    }

    private void ExpireOnTime()
    {
        lock (_gate)
        {
            ExpireOverdue(Stopwatch.GetTimestamp());
            ArmExpiry();
        }
    }

    /// <summary>Requests queued past the timeout leave unrun, answered with 429. Called under the gate.</summary>
    private void ExpireOverdue(long now)
    {
        while (_queue.First is { } first && now - first.Value.EnqueuedTimestamp > _queueTimeoutTicks)
        {
            _queue.RemoveFirst();
            _queuedRows -= first.Value.Rows;
            first.Value.Node = null;
            first.Value.Registration.Unregister(); // not Dispose: a cancellation callback may be waiting for this lock
            first.Value.Completion.TrySetException(new QueueFullException(
                $"Model '{_runner.Model.Name}' could not start this request within its queue timeout " +
                $"({_spec.QueueTimeoutMicroseconds / 1000.0:0.#} ms); retry shortly."));
        }
    }

    private void Run(List<WorkItem> batch)
    {
        var outputs = _runner.Model.Session.Outputs.Select(o => o.Name)
            .Where(name => batch.Any(item => item.Outputs.Contains(name)))
            .ToList();
        try
        {
            // Queue time: from the request's arrival to its being taken into a batch (0 for a request run at once).
            var (perPart, runMs) = _runner.Run(batch.Select(b => b.Data).ToList(), outputs, CancellationToken.None);
            var totalRows = batch.Sum(b => b.Rows);
            lock (_gate)
            {
                // The pace admission judges waits by: recent runs weigh most.
                _runMillisecondsEstimate = _runMillisecondsEstimate <= 0 ? runMs : (0.8 * _runMillisecondsEstimate) + (0.2 * runMs);
            }

            for (var i = 0; i < batch.Count; i++)
            {
                var item = batch[i];
                var queueMs = Stopwatch.GetElapsedTime(item.EnqueuedTimestamp, item.DequeuedTimestamp).TotalMilliseconds;
                _runner.Metrics.RecordQueueWait(_runner.Model.Name, queueMs);
                _runner.Model.Statistics.RecordQueue(ModelStatistics.Nanoseconds(item.EnqueuedTimestamp, item.DequeuedTimestamp));
                item.Registration.Dispose();
                item.Completion.TrySetResult(new InferenceResult(perPart[i].Outputs, queueMs, runMs, totalRows));
            }
        }
#pragma warning disable CA1031 // A failed run must fail its requests, never the worker thread.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogError(ex, "A batch of {Requests} request(s) for model {Model} failed", batch.Count, _runner.Model.Name);
            foreach (var item in batch)
            {
                item.Registration.Dispose();
                item.Completion.TrySetException(ex);
            }
        }
    }

    /// <summary>Stops the workers after the queued requests are served.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        foreach (var worker in _workers)
        {
            worker.Join(TimeSpan.FromSeconds(10));
        }

        _expiry?.Dispose();
    }

    private sealed class WorkItem(ReadOnlyMemory<float> rows, int rowCount, IReadOnlyList<string> outputs)
    {
        public ReadOnlyMemory<float> Data { get; } = rows;

        public int Rows { get; } = rowCount;

        public IReadOnlyList<string> Outputs { get; } = outputs;

        public long EnqueuedTimestamp { get; } = Stopwatch.GetTimestamp();

        /// <summary>When the worker took it into a batch (set under the gate).</summary>
        public long DequeuedTimestamp { get; set; }

        public TaskCompletionSource<InferenceResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public LinkedListNode<WorkItem>? Node { get; set; }

        public CancellationTokenRegistration Registration { get; set; }
    }
}
