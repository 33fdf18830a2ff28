using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// Wraps a backing store in a resilience pipeline, outermost first: an overall timeout, retries
/// with exponential back-off and jitter, a circuit breaker, and an optional per-attempt timeout.
/// Failures a client should wait out surface as <see cref="FeatureStoreUnavailableException"/>.
/// </summary>
/// <remarks>
/// <para>What is retried and counted by the breaker: broken or refused connections, timeouts and
/// busy databases (see the transient-failure rules). What is not: unknown tables or columns, bad
/// arguments, and the caller's own cancellation, which propagates as
/// <see cref="OperationCanceledException"/>.</para>
/// <para>The breaker sits inside the retries, so every attempt counts towards its failure ratio,
/// and a call refused by an open breaker is not retried: it fails at once with the remaining break
/// as <see cref="FeatureStoreUnavailableException.RetryAfter"/>.</para>
/// <para>Thread-safe; one instance per backing store (the breaker's state is per instance). Does
/// not own the inner store.</para>
/// </remarks>
public sealed class ResilientFeatureStore : IFeatureStore
{
    /// <summary>Budget of <see cref="PingAsync"/>: a readiness probe's, independent of the lookup budget.</summary>
    public static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(1);

    // The breaker sees the cancellation of the overall timeout as an OperationCanceledException;
    // the caller's own token, carried along, tells that apart from the client going away.
    private static readonly ResiliencePropertyKey<CancellationToken> CallerToken = new("MultiHeadServe.Features.CallerToken");

    /// <summary>How long past its budget a call that ignores cancellation is waited for before it is abandoned.</summary>
    private static readonly TimeSpan AbandonSlack = TimeSpan.FromMilliseconds(50);

    private readonly IFeatureStore _inner;
    private readonly FeatureStoreMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly ResiliencePipeline _pipeline;
    private readonly ResiliencePipeline _pingPipeline;
    private readonly CircuitBreakerStateProvider _circuit = new();
    private readonly TimeSpan _timeout;
    private readonly int _maxAttempts;
    private readonly int _maxAbandoned;

    // Calls abandoned past their budget that the store has not answered yet (see Bounded), and whether a call has
    // been answered since the last was abandoned.
    private int _abandoned;
    private volatile bool _answering = true;

    /// <param name="inner">The backing store; not disposed by this instance.</param>
    /// <param name="options">Timeout, retry and circuit-breaker settings.</param>
    /// <param name="metrics">Where fetches, failures and the circuit state are reported.</param>
    /// <param name="logger">Logs retries, circuit transitions and failures.</param>
    /// <param name="timeProvider">The clock for timeouts, back-off and break durations.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> are invalid.</exception>
    public ResilientFeatureStore(
        IFeatureStore inner,
        FeatureStoreOptions options,
        FeatureStoreMetrics metrics,
        ILogger<ResilientFeatureStore>? logger = null,
        TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(metrics);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        _inner = inner;
        _metrics = metrics;
        _logger = logger ?? NullLogger<ResilientFeatureStore>.Instance;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _timeout = TimeSpan.FromMilliseconds(options.TimeoutMilliseconds);
        _maxAttempts = options.Retry.MaxAttempts;
        _maxAbandoned = options.MaxAbandonedCalls;
        _pipeline = BuildPipeline(options);
        _pingPipeline = new ResiliencePipelineBuilder { TimeProvider = _timeProvider }.AddTimeout(PingTimeout).Build();
        metrics.ObserveCircuit(inner.Kind, () => _circuit.CircuitState);
    }

    /// <inheritdoc />
    public string Kind => _inner.Kind;

    /// <summary>The circuit breaker's state: closed (calls flow), open (failing fast), half-open (one trial call).</summary>
    public CircuitState CircuitState => _circuit.CircuitState;

    /// <inheritdoc />
    /// <exception cref="FeatureStoreUnavailableException">Retries exhausted, the timeout elapsed or the circuit is open.</exception>
    public ValueTask<IReadOnlyList<float[]?>> GetRowsAsync(
        string table,
        IReadOnlyList<string> keys,
        IReadOnlyList<string> columns,
        CancellationToken cancellationToken) =>
        ExecuteAsync(
            static (inner, lookup, token) => inner.GetRowsAsync(lookup.table, lookup.keys, lookup.columns, token),
            (table, keys, columns),
            isFetch: true,
            cancellationToken);

    /// <inheritdoc />
    /// <exception cref="FeatureStoreUnavailableException">Retries exhausted, the timeout elapsed or the circuit is open.</exception>
    public ValueTask<IReadOnlyList<IReadOnlyList<float[]?>>> GetEntitiesAsync(
        IReadOnlyList<EntityLookup> lookups,
        CancellationToken cancellationToken) =>
        ExecuteAsync(static (inner, all, token) => inner.GetEntitiesAsync(all, token), lookups, isFetch: true, cancellationToken);

    /// <inheritdoc />
    /// <exception cref="FeatureStoreUnavailableException">Retries exhausted, the timeout elapsed or the circuit is open.</exception>
    public ValueTask<FeatureTableSchema?> DescribeTableAsync(string table, CancellationToken cancellationToken) =>
        ExecuteAsync(static (inner, name, token) => inner.DescribeTableAsync(name, token), table, isFetch: false, cancellationToken);

    /// <inheritdoc />
    /// <remarks>Bypasses retries and the circuit breaker, so readiness reflects the store itself;
    /// bounded by <see cref="PingTimeout"/>.</remarks>
    public async ValueTask<bool> PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _pingPipeline.ExecuteAsync(static (inner, token) => inner.PingAsync(token), _inner, cancellationToken)
                .AsTask().WaitAsync(PingTimeout + AbandonSlack, _timeProvider, cancellationToken);
        }
        catch (TimeoutException) when (!cancellationToken.IsCancellationRequested)
        {
            // A store that ignores cancellation is as unready as one that refuses.
            return false;
        }
        catch (Exception exception) when (TransientFailure.IsTransient(exception) && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private async ValueTask<TResult> ExecuteAsync<TResult, TState>(
        Func<IFeatureStore, TState, CancellationToken, ValueTask<TResult>> call,
        TState state,
        bool isFetch,
        CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var started = _timeProvider.GetTimestamp();
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(CallerToken, cancellationToken);
        try
        {
            var result = await _pipeline.ExecuteAsync(
                static (ctx, operation) =>
                {
                    var self = operation.self;
                    if (self.NotAnswering() is { } refusal)
                    {
                        return ValueTask.FromException<TResult>(refusal);
                    }

                    if (operation.isFetch)
                    {
                        self._metrics.RecordFetch(self.Kind);
                    }

                    return self.Bounded(operation.call(self._inner, operation.state, ctx.CancellationToken));
                },
                context,
                (self: this, call, state, isFetch));
            _answering = true;
            Complete("ok");
            return result;
        }
        catch (BrokenCircuitException exception)
        {
            var retryAfter = exception.RetryAfter is { } remaining && remaining > TimeSpan.Zero
                ? remaining
                : FeatureStoreUnavailableException.DefaultRetryAfter;
            Fail("circuit_open");
            throw new FeatureStoreUnavailableException(
                $"The {Kind} feature store is unavailable: its circuit breaker is open after repeated failures. " +
                $"Retry after {retryAfter.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s.",
                retryAfter,
                exception);
        }
        catch (NotAnsweringException exception) when (!cancellationToken.IsCancellationRequested)
        {
            Fail("not_answering");
            throw new FeatureStoreUnavailableException(
                $"The {Kind} feature store is not answering: calls it was given have not come back.",
                FeatureStoreUnavailableException.DefaultRetryAfter,
                exception);
        }
        catch (Exception exception) when (exception is TimeoutRejectedException or AbandonedCallException && !cancellationToken.IsCancellationRequested)
        {
            // The overall budget, the per-attempt one when every attempt ran out of it, or an attempt abandoned past
            // the budget (see Bounded).
            Fail("timeout");
            var budget = exception is TimeoutRejectedException rejected ? rejected.Timeout : _timeout;
            throw new FeatureStoreUnavailableException(
                $"The {Kind} feature store did not answer within {budget.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)} ms.",
                FeatureStoreUnavailableException.DefaultRetryAfter,
                exception);
        }
        catch (Exception exception) when (TransientFailure.IsTransient(exception) && !cancellationToken.IsCancellationRequested)
        {
            Fail("transient");
            // The driver's words (a host, a port, a server message) go to the log, never to a client.
            _logger.LogWarning(exception, "Feature store {Store} is unavailable after {Attempts} attempt(s)", Kind, _maxAttempts);
            throw new FeatureStoreUnavailableException(
                $"The {Kind} feature store is unavailable (up to {_maxAttempts} attempts failed).",
                FeatureStoreUnavailableException.DefaultRetryAfter,
                exception);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Complete("canceled");
            throw;
        }
        catch (Exception)
        {
            // Not the store's health: a bad argument or a table/column the store lacks. The caller
            // reports it; logging here as well would log it twice.
            Fail("error");
            throw;
        }
        finally
        {
            // An abandoned call holds only the token it was given, not the context.
            ResilienceContextPool.Shared.Return(context);
        }

        void Complete(string outcome)
        {
            if (isFetch)
            {
                _metrics.RecordDuration(Kind, outcome, _timeProvider.GetElapsedTime(started));
            }
        }

        void Fail(string reason)
        {
            if (isFetch)
            {
                _metrics.RecordFailure(Kind, reason);
                Complete(reason == "error" ? "error" : "unavailable");
            }
        }
    }

    /// <summary>
    /// A refusal when <see cref="FeatureStoreOptions.MaxAbandonedCalls"/> calls the store was given have been abandoned
    /// and not yet answered, and none has been answered since: a store that does not answer is not handed more work
    /// (each such call may hold a connection, and a PostgreSQL server that was frozen starts a backend for every
    /// connection opened meanwhile, all at once, when it comes back). The circuit breaker's trial call is let through,
    /// so a store that answers again is found by a real call even if the abandoned ones never come back. Counts against
    /// the store like any failure.
    /// </summary>
    private NotAnsweringException? NotAnswering()
    {
        var abandoned = Volatile.Read(ref _abandoned);
        return abandoned < _maxAbandoned || _answering || _circuit.CircuitState == CircuitState.HalfOpen
            ? null
            : new NotAnsweringException($"{abandoned} calls abandoned past their budget have not been answered.");
    }

    /// <summary>
    /// One attempt, waited for no longer than the budget and a little slack. The pipeline's timeout cancels the call,
    /// but a store that stops answering (a frozen server, a driver waiting on a socket) may not heed cancellation:
    /// such a call is abandoned with a <see cref="TimeoutException"/>, inside the circuit breaker, so that abandoned
    /// calls count as failures and open the circuit like any other. The caller's wait is bounded whatever the store
    /// does. A call that completed at once (an embedded store) costs nothing more.
    /// </summary>
    private ValueTask<TResult> Bounded<TResult>(ValueTask<TResult> attempt)
    {
        if (attempt.IsCompleted)
        {
            return attempt;
        }

        return new ValueTask<TResult>(Abandoning(attempt.AsTask(), _timeout + AbandonSlack));

        async Task<TResult> Abandoning(Task<TResult> pending, TimeSpan limit)
        {
            try
            {
                return await pending.WaitAsync(limit, _timeProvider, CancellationToken.None);
            }
            catch (TimeoutException) when (!pending.IsCompleted)
            {
                // Counted until the store answers it; observed, so its eventual failure is not an unobserved task exception.
                Interlocked.Increment(ref _abandoned);
                _answering = false;
                _ = pending.ContinueWith(
                    static (t, state) =>
                    {
                        _ = t.Exception;
                        Interlocked.Decrement(ref ((ResilientFeatureStore)state!)._abandoned);
                    },
                    this,
                    CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously,
                    TaskScheduler.Default);
                throw new AbandonedCallException($"The store did not answer within {limit.TotalMilliseconds} ms and ignored cancellation.");
            }
        }
    }

    private ResiliencePipeline BuildPipeline(FeatureStoreOptions options)
    {
        var builder = new ResiliencePipelineBuilder { TimeProvider = _timeProvider };

        builder.AddTimeout(new TimeoutStrategyOptions { Timeout = _timeout });

        if (options.Retry.MaxAttempts > 1)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.Retry.MaxAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(options.Retry.BaseDelayMilliseconds),
                MaxDelay = _timeout,
                // A store that is not answering is not asked again within the same budget.
                ShouldHandle = static args => ValueTask.FromResult(
                    args.Outcome.Exception is { } exception and not NotAnsweringException && TransientFailure.IsTransient(exception)),
                OnRetry = args =>
                {
                    _metrics.RecordRetry(Kind);
                    _logger.LogDebug(
                        args.Outcome.Exception,
                        "Feature store {Store} attempt {Attempt} failed; retrying in {DelayMs} ms",
                        Kind,
                        args.AttemptNumber + 1,
                        args.RetryDelay.TotalMilliseconds);
                    return default;
                },
            });
        }

        var breakDuration = TimeSpan.FromSeconds(options.CircuitBreaker.BreakDurationSeconds);
        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            FailureRatio = options.CircuitBreaker.FailureRatio,
            MinimumThroughput = options.CircuitBreaker.MinimumThroughput,
            SamplingDuration = TimeSpan.FromSeconds(options.CircuitBreaker.SamplingDurationSeconds),
            BreakDuration = breakDuration,
            StateProvider = _circuit,
            ShouldHandle = static args => ValueTask.FromResult(args.Outcome.Exception switch
            {
                null => false,
                // The overall timeout cut the attempt short: the store was too slow, which is
                // exactly what the breaker is for. The caller cancelling is not the store's fault.
                OperationCanceledException =>
                    !args.Context.Properties.GetValue(CallerToken, CancellationToken.None).IsCancellationRequested,
                var exception => TransientFailure.IsTransient(exception),
            }),
            OnOpened = args =>
            {
                _logger.LogError(
                    args.Outcome.Exception,
                    "Feature store {Store} circuit opened for {BreakSeconds} s after repeated failures",
                    Kind,
                    args.BreakDuration.TotalSeconds);
                return default;
            },
            OnHalfOpened = _ =>
            {
                _logger.LogInformation("Feature store {Store} circuit half-open: trying one call", Kind);
                return default;
            },
            OnClosed = _ =>
            {
                _logger.LogInformation("Feature store {Store} circuit closed: calls flow again", Kind);
                return default;
            },
        });

        if (options.Retry.AttemptTimeoutMilliseconds > 0)
        {
            builder.AddTimeout(new TimeoutStrategyOptions
            {
                Timeout = TimeSpan.FromMilliseconds(options.Retry.AttemptTimeoutMilliseconds),
            });
        }

        return builder.Build();
    }

    /// <summary>A call that ignored cancellation and was abandoned past its budget (a driver's own timeouts are other types).</summary>
    private sealed class AbandonedCallException(string message) : TimeoutException(message);

    /// <summary>A call refused because too many abandoned ones are still unanswered (see <see cref="NotAnswering"/>).</summary>
    private sealed class NotAnsweringException(string message) : TimeoutException(message);
}
