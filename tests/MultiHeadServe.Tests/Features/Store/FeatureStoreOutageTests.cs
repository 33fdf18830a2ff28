using System.Diagnostics;
using MultiHeadServe.Features.Store;
using MultiHeadServe.Tests.Infrastructure;
using Npgsql;
using Polly.CircuitBreaker;

namespace MultiHeadServe.Tests.Features.Store;

/// <summary>
/// The resilient store over a real PostgreSQL server that goes away, hangs and comes back. The
/// server is this class's own: its tests stop it.
/// </summary>
public sealed class FeatureStoreOutageTests(PostgresServer server) : IClassFixture<PostgresServer>, IAsyncLifetime, IDisposable
{
    // Lookups are given a 1 s budget (300 ms where the timeout itself is under test) and must give
    // up within 2 s: room for a busy machine, yet far below what a stalled connection would take.
    private const int TimeoutMilliseconds = 1_000;
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);
    private readonly FeatureStoreMetrics _metrics = new();
    private readonly TemporaryDirectory _files = new();
    private string _connectionString = "";
    private PostgresFeatureStore? _backing;

    private PostgresFeatureStore Backing => _backing ?? throw new InvalidOperationException("Created in InitializeAsync.");

    public async Task InitializeAsync()
    {
        // A test that failed half-way may have left the server stopped.
        await server.StartAsync();
        _connectionString = await server.CreateSchemaAsync();
        _backing = new PostgresFeatureStore(_connectionString);
        var users = _files.Write("users.csv", "user_id,age,score", "u1,31,0.5", "u2,45,1.5");
        await FeatureSeeder.SeedAsync(Backing, "users", users);
        // Warm the pool and the table's cached shape, so that the budgets under test are not
        // spent on a first connect.
        await Backing.GetRowsAsync("users", ["u1"], ["age"], default);
    }

    public async Task DisposeAsync()
    {
        if (_backing is not null)
        {
            await _backing.DisposeAsync();
        }
    }

    public void Dispose()
    {
        _metrics.Dispose();
        _files.Dispose();
    }

    [Fact]
    public async Task AStoppedServerMakesLookupsUnavailableWithinTheBudgetAndRecoveryIsAutomatic()
    {
        var store = Resilient(new FeatureStoreOptions { TimeoutMilliseconds = TimeoutMilliseconds, CircuitBreaker = new() { MinimumThroughput = 100 } });
        FeatureAssert.Row((await LookupAsync(store))[0], 31f, 0.5f);

        await server.StopAsync();
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));
        var elapsed = clock.Elapsed;

        Assert.True(elapsed < Budget, $"Took {elapsed}.");
        Assert.Equal(FeatureStoreUnavailableException.DefaultRetryAfter, error.RetryAfter);
        Assert.True(_metrics.RetryCount >= 1, "A connection failure is transient and should have been retried.");
        Assert.False(await store.PingAsync(default));

        await server.StartAsync();

        FeatureAssert.Row((await LookupAsync(store))[1], 45f, 1.5f);
        Assert.True(await store.PingAsync(default));
    }

    [Fact]
    public async Task RepeatedFailuresOpenTheCircuitWhichClosesOnceTheServerIsBackAndTheBreakIsOver()
    {
        var store = Resilient(new FeatureStoreOptions
        {
            TimeoutMilliseconds = TimeoutMilliseconds,
            Retry = new() { MaxAttempts = 2 },
            CircuitBreaker = new() { FailureRatio = 0.5, MinimumThroughput = 4, SamplingDurationSeconds = 30, BreakDurationSeconds = 1 },
        });
        await LookupAsync(store);

        await server.StopAsync();
        for (var call = 0; call < 10 && store.CircuitState != CircuitState.Open; call++)
        {
            await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));
        }

        Assert.Equal(CircuitState.Open, store.CircuitState);
        var fetchesBeforeOpenCall = _metrics.FetchCount;
        var open = await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));
        Assert.Equal(fetchesBeforeOpenCall, _metrics.FetchCount);
        Assert.InRange(open.RetryAfter, TimeSpan.FromTicks(1), TimeSpan.FromSeconds(1));
        Assert.Contains("circuit breaker is open", open.Message, StringComparison.Ordinal);

        await server.StartAsync();
        var rows = await EventuallyAsync(() => LookupAsync(store), TimeSpan.FromSeconds(15));

        FeatureAssert.Row(rows[0], 31f, 0.5f);
        Assert.Equal(CircuitState.Closed, store.CircuitState);
    }

    [Fact]
    public async Task ALookupBlockedByALockIsCutOffWithinTheBudget()
    {
        var store = Resilient(new FeatureStoreOptions { TimeoutMilliseconds = 300, CircuitBreaker = new() { MinimumThroughput = 100 } });

        await using (await LockUsersAsync())
        {
            var clock = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<FeatureStoreUnavailableException>(() => LookupAsync(store));
            var elapsed = clock.Elapsed;

            Assert.True(elapsed < Budget, $"Took {elapsed}.");
            Assert.Contains("did not answer within 300 ms", error.Message, StringComparison.Ordinal);
        }

        FeatureAssert.Row((await LookupAsync(store))[0], 31f, 0.5f);
    }

    [Fact]
    public async Task AClientGoingAwayCancelsItsLookupWithoutCountingAgainstTheStore()
    {
        var store = Resilient(new FeatureStoreOptions { TimeoutMilliseconds = 30_000, CircuitBreaker = new() { MinimumThroughput = 2 } });
        await LookupAsync(store);

        await using (await LockUsersAsync())
        {
            for (var call = 0; call < 3; call++)
            {
                using var client = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => LookupAsync(store, client.Token));
            }
        }

        Assert.Equal(0, _metrics.FailureCount);
        Assert.Equal(CircuitState.Closed, store.CircuitState);
        FeatureAssert.Row((await LookupAsync(store))[0], 31f, 0.5f);
    }

    [Fact]
    public async Task AFullRequestOfKeysIsOneFetch()
    {
        var store = Resilient(new FeatureStoreOptions { TimeoutMilliseconds = TimeoutMilliseconds });
        var keys = Enumerable.Range(0, 256).Select(i => i % 2 == 0 ? "u1" : $"x{i}").ToList();

        var rows = await LookupAsync(store, keys);

        Assert.Equal(1, _metrics.FetchCount);
        Assert.Equal(256, rows.Count);
        Assert.Equal(128, rows.Count(row => row is not null));
    }

    private ResilientFeatureStore Resilient(FeatureStoreOptions options) => new(Backing, options, _metrics);

    private static Task<IReadOnlyList<float[]?>> LookupAsync(ResilientFeatureStore store, CancellationToken cancellationToken = default) =>
        LookupAsync(store, ["u1", "u2"], cancellationToken);

    private static Task<IReadOnlyList<float[]?>> LookupAsync(
        ResilientFeatureStore store, IReadOnlyList<string> keys, CancellationToken cancellationToken = default) =>
        store.GetRowsAsync("users", keys, ["age", "score"], cancellationToken).AsTask();

    /// <summary>Holds an exclusive lock on the users table until disposed, so lookups block.</summary>
    private async Task<NpgsqlConnection> LockUsersAsync()
    {
        // Unpooled: disposing closes the session, which ends the transaction and its lock.
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE", connection);
        await command.ExecuteNonQueryAsync();
        return connection;
    }

    /// <summary>
    /// Retries <paramref name="lookup"/> while the store is unavailable, waiting the Retry-After it
    /// names each time (as a client would), until it succeeds or <paramref name="deadline"/> passes.
    /// </summary>
    private static async Task<T> EventuallyAsync<T>(Func<Task<T>> lookup, TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await lookup();
            }
            catch (FeatureStoreUnavailableException error) when (clock.Elapsed < deadline)
            {
                await Task.Delay(error.RetryAfter < TimeSpan.FromSeconds(1) ? error.RetryAfter : TimeSpan.FromSeconds(1));
            }
        }
    }
}
