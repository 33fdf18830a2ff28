using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using MultiHeadServe.Features.Store;
using Npgsql;
using Polly.CircuitBreaker;

namespace MultiHeadServe.Tests.Features.Store;

/// <summary>The resilience decorator alone, over a scripted store that fails on cue.</summary>
public sealed class ResilientFeatureStoreTests : IDisposable
{
    private static readonly float[] Row = [1f, 2f];
    private readonly FeatureStoreMetrics _metrics = new();

    public void Dispose() => _metrics.Dispose();

    [Fact]
    public async Task TransientFailuresAreRetriedUntilTheStoreAnswers()
    {
        var inner = new ScriptedFeatureStore((attempt, _) => attempt < 3
            ? Task.FromException<IReadOnlyList<float[]?>>(new SqliteException("database is locked", 5))
            : Task.FromResult<IReadOnlyList<float[]?>>([Row]));
        var store = Resilient(inner, Options());

        var rows = await LookupAsync(store);

        Assert.Same(Row, rows[0]);
        Assert.Equal(3, inner.Attempts);
        Assert.Equal(3, _metrics.FetchCount);
        Assert.Equal(2, _metrics.RetryCount);
        Assert.Equal(0, _metrics.FailureCount);
    }

    [Fact]
    public async Task ExhaustedRetriesSurfaceAsUnavailable()
    {
        var inner = ScriptedFeatureStore.Failing(() => new NpgsqlException("Failed to connect", new SocketException((int)SocketError.ConnectionRefused)));
        var store = Resilient(inner, Options());

        var error = await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));

        Assert.Equal(3, inner.Attempts);
        Assert.Equal(FeatureStoreUnavailableException.DefaultRetryAfter, error.RetryAfter);
        Assert.IsType<NpgsqlException>(error.InnerException);
        Assert.Contains("scripted feature store is unavailable", error.Message, StringComparison.Ordinal);
        // The driver's own words can name a host and port: they stay in the log.
        Assert.DoesNotContain("Failed to connect", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _metrics.FailureCount);
    }

    [Fact]
    public async Task AStoreThatIgnoresCancellationIsAbandonedAtTheBudget()
    {
        var inner = ScriptedFeatureStore.Frozen();
        var store = Resilient(inner, Options(timeoutMilliseconds: 200));
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));
        var ready = await store.PingAsync(CancellationToken.None);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2.5), $"Took {clock.Elapsed}.");
        Assert.Contains("did not answer within 200 ms", error.Message, StringComparison.Ordinal);
        Assert.False(ready);
    }

    [Fact]
    public async Task AbandonedCallsOpenTheCircuitSoLaterCallsFailAtOnce()
    {
        var inner = ScriptedFeatureStore.Frozen();
        var store = Resilient(inner, Options(timeoutMilliseconds: 100, maxAttempts: 1, minimumThroughput: 4));

        var abandoned = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store))));
        var clock = Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));

        Assert.All(abandoned, e => Assert.Contains("did not answer within 100 ms", e.Message, StringComparison.Ordinal));
        Assert.Equal(CircuitState.Open, store.CircuitState);
        Assert.Contains("circuit breaker is open", refused.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(100), $"The refused call took {clock.Elapsed.TotalMilliseconds} ms.");
        Assert.Equal(4, inner.Attempts);
    }

    [Fact]
    public async Task AStoreThatDoesNotAnswerIsGivenNoMoreCallsThanItsAbandonedOnesUntilItAnswers()
    {
        // Every call waits on the store's one answer, which does not come until the test gives it (a frozen server).
        var answer = new TaskCompletionSource<IReadOnlyList<float[]?>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var inner = new ScriptedFeatureStore((_, _) => answer.Task);
        var store = Resilient(inner, Options(timeoutMilliseconds: 100, maxAttempts: 1) with { MaxAbandonedCalls = 3 });

        var abandoned = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store))));
        var clock = Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));
        var refusedIn = clock.Elapsed;

        Assert.All(abandoned, e => Assert.Contains("did not answer within 100 ms", e.Message, StringComparison.Ordinal));
        Assert.Contains("is not answering", refused.Message, StringComparison.Ordinal);
        Assert.True(refusedIn < TimeSpan.FromMilliseconds(100), $"The refused call took {refusedIn.TotalMilliseconds} ms.");
        Assert.Equal(3, inner.Attempts);
        Assert.Equal(CircuitState.Closed, store.CircuitState);

        // The store answers the calls it was given: the next call reaches it and is answered.
        answer.SetResult([Row]);
        var rows = await WaitForAsync(() => LookupAsync(store));

        Assert.Equal(Row, rows[0]);
        Assert.Equal(4, inner.Attempts);
    }

    [Fact]
    public async Task TheCircuitsTrialCallReachesAStoreWhoseAbandonedCallsNeverComeBack()
    {
        // The first two calls never come back; the store answers every later one.
        var inner = new ScriptedFeatureStore((attempt, _) => attempt <= 2
            ? new TaskCompletionSource<IReadOnlyList<float[]?>>().Task
            : Task.FromResult<IReadOnlyList<float[]?>>([Row]));
        var store = Resilient(inner, Options(timeoutMilliseconds: 100, maxAttempts: 1, minimumThroughput: 2, breakSeconds: 0.5) with { MaxAbandonedCalls = 2 });

        await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store))));
        Assert.Equal(CircuitState.Open, store.CircuitState);
        await Task.Delay(TimeSpan.FromSeconds(0.6));

        var trial = await LookupAsync(store);
        var next = await LookupAsync(store);

        Assert.Equal(Row, trial[0]);
        Assert.Equal(Row, next[0]);
        Assert.Equal(4, inner.Attempts);
        Assert.Equal(CircuitState.Closed, store.CircuitState);
    }

    [Fact]
    public async Task ErrorsThatRetryingCannotFixAreNeitherRetriedNorHeldAgainstTheStore()
    {
        var inner = ScriptedFeatureStore.Failing(() => new FeatureSchemaException("Feature table 'users' has no column 'age'."));
        var store = Resilient(inner, Options(minimumThroughput: 2));

        for (var call = 0; call < 10; call++)
        {
            await Assert.ThrowsAsync<FeatureSchemaException>(() => LookupAsync(store));
        }

        Assert.Equal(10, inner.Attempts);
        Assert.Equal(CircuitState.Closed, store.CircuitState);
    }

    [Fact]
    public async Task BadSqlIsNotRetried()
    {
        var inner = ScriptedFeatureStore.Failing(() => new SqliteException("no such table: users", 1));
        var store = Resilient(inner, Options());

        await Assert.ThrowsAsync<SqliteException>(() => LookupAsync(store));

        Assert.Equal(1, inner.Attempts);
    }

    [Fact]
    public async Task AHangingStoreIsCutOffAtTheOverallTimeout()
    {
        var inner = ScriptedFeatureStore.Hanging();
        var store = Resilient(inner, Options(timeoutMilliseconds: 200));
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"Took {clock.Elapsed}.");
        Assert.Contains("did not answer within 200 ms", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, inner.Attempts);
    }

    [Fact]
    public async Task APerAttemptTimeoutLeavesRoomForARetry()
    {
        var inner = new ScriptedFeatureStore(async (attempt, token) =>
        {
            if (attempt == 1)
            {
                await Task.Delay(Timeout.Infinite, token);
            }

            return [Row];
        });
        var options = Options(timeoutMilliseconds: 5_000) with
        {
            Retry = new FeatureStoreRetryOptions { MaxAttempts = 3, BaseDelayMilliseconds = 1, AttemptTimeoutMilliseconds = 100 },
        };
        var store = Resilient(inner, options);

        var rows = await LookupAsync(store);

        Assert.Same(Row, rows[0]);
        Assert.Equal(2, inner.Attempts);
    }

    [Fact]
    public async Task TimeoutsOpenTheCircuitAndLaterCallsFailFastWithRetryAfter()
    {
        var inner = ScriptedFeatureStore.Hanging();
        var store = Resilient(inner, Options(timeoutMilliseconds: 50, maxAttempts: 1, minimumThroughput: 2, breakSeconds: 30));

        await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));
        await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));
        var error = await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));

        Assert.Equal(CircuitState.Open, store.CircuitState);
        Assert.Contains("circuit breaker is open", error.Message, StringComparison.Ordinal);
        Assert.InRange(error.RetryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        Assert.Equal(2, inner.Attempts);
        Assert.Equal(2, _metrics.FetchCount);
        Assert.Equal(3, _metrics.FailureCount);
    }

    [Fact]
    public async Task TheCallerCancellingIsNeitherUnavailabilityNorAFailureOfTheStore()
    {
        var inner = ScriptedFeatureStore.Hanging();
        var store = Resilient(inner, Options(timeoutMilliseconds: 30_000, minimumThroughput: 2));

        for (var call = 0; call < 4; call++)
        {
            using var client = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => LookupAsync(store, client.Token));
        }

        Assert.Equal(CircuitState.Closed, store.CircuitState);
        Assert.Equal(0, _metrics.FailureCount);
    }

    [Fact]
    public async Task AnAlreadyCancelledCallNeverReachesTheStore()
    {
        var inner = ScriptedFeatureStore.Hanging();
        var store = Resilient(inner, Options());
        using var client = new CancellationTokenSource();
        await client.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => LookupAsync(store, client.Token));

        Assert.Equal(0, inner.Attempts);
    }

    [Fact]
    public async Task PingReportsAHangingStoreAsNotReadyWithinItsBudget()
    {
        var store = Resilient(ScriptedFeatureStore.Hanging(), Options());
        var clock = Stopwatch.StartNew();

        Assert.False(await store.PingAsync(default));
        Assert.True(clock.Elapsed < ResilientFeatureStore.PingTimeout + TimeSpan.FromSeconds(2), $"Took {clock.Elapsed}.");
    }

    [Fact]
    public async Task FetchesFailuresAndDurationsReachTheMeter()
    {
        var calls = 0;
        var inner = new ScriptedFeatureStore((_, _) => Interlocked.Increment(ref calls) <= 2
            ? Task.FromResult<IReadOnlyList<float[]?>>([Row])
            : Task.FromException<IReadOnlyList<float[]?>>(new TimeoutException("read timed out")));
        var store = Resilient(inner, Options(maxAttempts: 1));
        var measurements = new List<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == FeatureStoreMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var tagged = new Dictionary<string, object?>(tags.ToArray());
            // Other test classes run meanwhile with stores of their own; keep only this one's.
            if (Equals(tagged.GetValueOrDefault("store"), "scripted"))
            {
                lock (measurements)
                {
                    measurements.Add((instrument.Name, value, tagged));
                }
            }
        }

        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        listener.Start();

        await LookupAsync(store);
        await LookupAsync(store);
        await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));

        Assert.Equal(3, measurements.Where(m => m.Instrument == "mhs.feature_store.lookups").Sum(m => m.Value));
        var failure = Assert.Single(measurements, m => m.Instrument == "mhs.feature_store.failures");
        Assert.Equal("transient", failure.Tags["reason"]);
        var durations = measurements.Where(m => m.Instrument == "mhs.feature_store.lookup.duration").ToList();
        Assert.Equal(["ok", "ok", "unavailable"], durations.Select(m => (string)m.Tags["outcome"]!));
        Assert.All(durations, m => Assert.True(m.Value >= 0));
    }

    [Fact]
    public void InvalidOptionsAreRejectedUpFront()
    {
        var options = Options() with { TimeoutMilliseconds = 0 };

        var error = Assert.Throws<ArgumentException>(() => Resilient(ScriptedFeatureStore.Hanging(), options));

        Assert.Contains("FeatureStore:TimeoutMilliseconds", error.Message, StringComparison.Ordinal);
    }

    private static FeatureStoreOptions Options(
        int timeoutMilliseconds = 1_000, int maxAttempts = 3, int minimumThroughput = 100, double breakSeconds = 1) => new()
        {
            TimeoutMilliseconds = timeoutMilliseconds,
            Retry = new FeatureStoreRetryOptions { MaxAttempts = maxAttempts, BaseDelayMilliseconds = 1 },
            CircuitBreaker = new FeatureStoreCircuitBreakerOptions
            {
                FailureRatio = 0.5,
                MinimumThroughput = minimumThroughput,
                SamplingDurationSeconds = 30,
                BreakDurationSeconds = breakSeconds,
            },
        };

    private static Task<IReadOnlyList<float[]?>> LookupAsync(ResilientFeatureStore store, CancellationToken cancellationToken = default) =>
        store.GetRowsAsync("users", ["u1"], ["age", "score"], cancellationToken).AsTask();

    /// <summary>The lookup's result once the store's answer to the abandoned calls has been counted (a moment later).</summary>
    private static async Task<IReadOnlyList<float[]?>> WaitForAsync(Func<Task<IReadOnlyList<float[]?>>> lookup)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await lookup();
            }
            catch (FeatureStoreUnavailableException) when (deadline.Elapsed < TimeSpan.FromSeconds(5))
            {
                await Task.Delay(20);
            }
        }
    }

    private ResilientFeatureStore Resilient(IFeatureStore inner, FeatureStoreOptions options) => new(inner, options, _metrics);
}
