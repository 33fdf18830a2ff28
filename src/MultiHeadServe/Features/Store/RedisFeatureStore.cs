using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using StackExchange.Redis;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// The online store most feature platforms serve from: one Redis hash per entity (key layout in
/// <see cref="RedisKeyLayout"/>), one field per feature column, each value a number written as text. All keys
/// of a request, whatever their tables, are read with one <c>HMGET</c> each inside one <c>MULTI</c>/<c>EXEC</c>
/// transaction: one write, one round trip, and one consistent moment of the data.
/// </summary>
/// <remarks>
/// <para>Thread-safe; register as a singleton. One <see cref="ConnectionMultiplexer"/> serves every call, as the
/// library intends; it connects on first use and reconnects by itself after an outage. While it is disconnected,
/// calls fail at once (the fail-fast backlog policy) rather than queue: the resilience pipeline, not the client
/// library, decides how long a request waits.</para>
/// <para>Values are written in the shortest text that reads back as the same float (round-trip formatting) and
/// read with the invariant culture, so nothing is lost either way; clients of other languages writing decimal
/// text are read as well. A field that is absent reads as <see cref="float.NaN"/>; a hash with none of the
/// requested fields (or no hash) is an unknown entity. Redis keeps no schema: a table's columns are the fields of
/// the first hashes found by <c>SCAN</c> (at start-up and on first use of a table, never per request; a table found
/// absent is looked for again at most once a second).</para>
/// <para>Redis Cluster runs a transaction only over keys of one hash slot: there, give the key templates a common
/// hash tag (e.g. <c>{features}:{table}:{key}</c>), which keeps the features on one shard.</para>
/// </remarks>
public sealed class RedisFeatureStore : FeatureStore, IAsyncDisposable
{
    /// <summary>What a table's key column is called here: Redis keeps the entity key in the hash's key, not in a field.</summary>
    public const string KeyColumnName = "key";

    /// <summary>Hashes whose fields together make a table's columns.</summary>
    private const int SchemaSample = 16;

    /// <summary>Keys asked for per SCAN call while looking for a table's hashes.</summary>
    private const int ScanPageSize = 1000;

    /// <summary>How long a table found absent is taken as absent without scanning again.</summary>
    private static readonly TimeSpan AbsenceReuse = TimeSpan.FromSeconds(1);

    /// <summary>Tables found absent, and when: requests for a model whose table is not loaded yet must not each scan the keyspace.</summary>
    private readonly ConcurrentDictionary<string, long> _absent = new(StringComparer.Ordinal);
    private readonly Func<Lazy<Task<IConnectionMultiplexer>>>? _reconnect;
    private readonly bool _ownsConnection;
    private Lazy<Task<IConnectionMultiplexer>> _connection;

    /// <summary>Creates a store with a multiplexer of its own, connected on first use and disposed with the store.</summary>
    /// <param name="configuration">A StackExchange.Redis configuration string, e.g. <c>localhost:6379</c>.</param>
    /// <param name="layout">The key layout; the default when null.</param>
    public RedisFeatureStore(string configuration, RedisKeyLayout? layout = null)
        : this(Options(configuration), layout)
    {
    }

    /// <summary>Creates a store over a multiplexer the caller owns (and disposes).</summary>
    public RedisFeatureStore(IConnectionMultiplexer connection, RedisKeyLayout? layout = null)
        : this(new Lazy<Task<IConnectionMultiplexer>>(Task.FromResult(connection ?? throw new ArgumentNullException(nameof(connection)))), layout, ownsConnection: false)
    {
    }

    private RedisFeatureStore(ConfigurationOptions options, RedisKeyLayout? layout)
        : this(Connect(options), layout, ownsConnection: true)
    {
        _reconnect = () => Connect(options);
    }

    private RedisFeatureStore(Lazy<Task<IConnectionMultiplexer>> connection, RedisKeyLayout? layout, bool ownsConnection)
        : base("redis", StringComparer.Ordinal)
    {
        Layout = layout ?? new RedisKeyLayout();
        var errors = Layout.Validate("RedisKeys");
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(layout));
        }

        _connection = connection;
        _ownsConnection = ownsConnection;
    }

    /// <summary>Where entities live.</summary>
    public RedisKeyLayout Layout { get; }

    /// <summary>
    /// The client settings the store uses: <paramref name="configuration"/>, never aborting on a failed connect
    /// (the service starts without Redis and connects when it can), failing calls fast while disconnected, and
    /// retrying a lost connection every half second, so service resumes soon after Redis is back.
    /// </summary>
    public static ConfigurationOptions Options(string configuration)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(configuration);
        var options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false;
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ReconnectRetryPolicy = new LinearRetry(500);
        return options;
    }

    /// <inheritdoc />
    protected override async ValueTask ReadRowsAsync(IReadOnlyList<EntityQuery> queries, CancellationToken cancellationToken)
    {
        var database = (await ConnectionAsync(cancellationToken)).GetDatabase();
        // A transaction is one message to the client library: MULTI, every HMGET and EXEC leave in one write and
        // the answers come back in one reply, read from one moment of the data (an import replacing a table is
        // seen whole or not at all). A plain batch is pipelined too, but written command by command.
        var transaction = database.CreateTransaction();
        var replies = new List<Task<RedisValue[]>>();
        foreach (var query in queries)
        {
            var fields = query.Columns.Select(column => (RedisValue)column).ToArray();
            foreach (var key in query.Keys)
            {
                replies.Add(transaction.HashGetAsync(Layout.KeyFor(query.Schema.Table, key), fields));
            }
        }

        var all = Task.WhenAll([transaction.ExecuteAsync(), .. replies]);
        try
        {
            await all.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The transaction is sent and cannot be recalled: a late failure of it is observed here, so it does not
            // surface later as an unobserved task exception.
            _ = all.ContinueWith(static task => _ = task.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }

        var reply = 0;
        foreach (var query in queries)
        {
            foreach (var key in query.Keys)
            {
                var values = replies[reply++].Result;
                if (ReadRow(query, key, values) is { } row)
                {
                    query.Add(key, row);
                }
            }
        }
    }

    /// <inheritdoc />
    protected override bool IsSchemaChange(Exception exception) =>
        exception is RedisServerException server && server.Message.StartsWith("WRONGTYPE", StringComparison.Ordinal);

    /// <inheritdoc />
    protected override async ValueTask<FeatureTableSchema?> ReadSchemaAsync(string table, CancellationToken cancellationToken)
    {
        SqlIdentifier.Validate(table, "table", nameof(table));
        if (_absent.TryGetValue(table, out var since) && Stopwatch.GetElapsedTime(since) < AbsenceReuse)
        {
            return null;
        }

        var connection = await ConnectionAsync(cancellationToken);
        var database = connection.GetDatabase();
        // Hashes need not all have the same fields (a client may omit a missing value): the table's columns are
        // those of the first few hashes found, together, in the order first seen.
        var columns = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var sampled = 0;
        await foreach (var key in KeysAsync(connection, table, cancellationToken))
        {
            if (await database.KeyTypeAsync(key).WaitAsync(cancellationToken) != RedisType.Hash)
            {
                continue;
            }

            foreach (var field in await database.HashKeysAsync(key).WaitAsync(cancellationToken))
            {
                if ((string?)field is { } name && SqlIdentifier.IsValid(name) && seen.Add(name))
                {
                    columns.Add(name);
                }
            }

            if (++sampled == SchemaSample)
            {
                break;
            }
        }

        if (columns.Count == 0)
        {
            _absent[table] = Stopwatch.GetTimestamp();
            return null;
        }

        _absent.TryRemove(table, out _);
        return new FeatureTableSchema(table, KeyColumnName, columns);
    }

    /// <inheritdoc />
    public override async ValueTask<bool> PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            var connection = await ConnectionAsync(cancellationToken);
            await connection.GetDatabase().PingAsync().WaitAsync(cancellationToken);
            return true;
        }
        catch (RedisException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <inheritdoc />
    /// <remarks>The rows are read whole first (a malformed file changes nothing), then the table's old hashes are
    /// deleted and the new ones written in one <c>MULTI</c>/<c>EXEC</c> transaction: readers see the old table or
    /// the new one, never a mix. Values are written with round-trip formatting; NaN as <c>NaN</c>.</remarks>
    public override async ValueTask<FeatureSeedResult> WriteTableAsync(
        FeatureTableSchema schema,
        IAsyncEnumerable<FeatureRow> rows,
        bool replace,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        SqlIdentifier.QuoteSchema(schema);
        var fields = schema.Columns.Select(column => (RedisValue)column).ToArray();

        var buffered = new List<FeatureRow>();
        await foreach (var row in rows.WithCancellation(cancellationToken))
        {
            if (row.Values.Length != fields.Length)
            {
                throw new ArgumentException(
                    $"Row '{row.Key}' has {row.Values.Length} values; table '{schema.Table}' has {fields.Length} feature columns.",
                    nameof(rows));
            }

            buffered.Add(row);
        }

        var connection = await ConnectionAsync(cancellationToken);
        var existing = new List<RedisKey>();
        await foreach (var key in KeysAsync(connection, schema.Table, cancellationToken))
        {
            existing.Add(key);
            if (!replace)
            {
                break;
            }
        }

        if (existing.Count > 0 && !replace)
        {
            return new FeatureSeedResult(schema.Table, FeatureSeedOutcome.Skipped, 0);
        }

        var transaction = connection.GetDatabase().CreateTransaction();
        var writes = new List<Task>(existing.Count + buffered.Count);
        if (existing.Count > 0)
        {
            writes.Add(transaction.KeyDeleteAsync([.. existing]));
        }

        foreach (var row in buffered)
        {
            var key = Layout.KeyFor(schema.Table, row.Key);
            var entries = new HashEntry[fields.Length];
            for (var i = 0; i < entries.Length; i++)
            {
                entries[i] = new HashEntry(fields[i], Format(row.Values[i]));
            }

            writes.Add(transaction.HashSetAsync(key, entries));
        }

        if (!await transaction.ExecuteAsync().WaitAsync(cancellationToken))
        {
            throw new InvalidOperationException($"Redis did not apply the transaction writing table '{schema.Table}'.");
        }

        await Task.WhenAll(writes);
        _absent.TryRemove(schema.Table, out _);
        Forget(schema.Table);
        Remember(new FeatureTableSchema(schema.Table, KeyColumnName, schema.Columns));
        return new FeatureSeedResult(schema.Table, existing.Count > 0 ? FeatureSeedOutcome.Replaced : FeatureSeedOutcome.Created, buffered.Count);
    }

    /// <summary>Closes the multiplexer when the store created it.</summary>
    public async ValueTask DisposeAsync()
    {
        var connection = Volatile.Read(ref _connection);
        if (_ownsConnection && connection.IsValueCreated)
        {
            try
            {
                // A connect still under way (bounded by the connect timeout) is waited for, so its multiplexer is closed too.
                await (await connection.Value).DisposeAsync();
            }
            catch (RedisException)
            {
                // It never connected: nothing to close.
            }
        }
    }

    /// <summary>A feature value as the store writes it: the shortest text that parses back to the same float.</summary>
    public static string Format(float value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static Lazy<Task<IConnectionMultiplexer>> Connect(ConfigurationOptions options) =>
        new(async () => await ConnectionMultiplexer.ConnectAsync(options), LazyThreadSafetyMode.ExecutionAndPublication);

    private Task<IConnectionMultiplexer> ConnectionAsync(CancellationToken cancellationToken)
    {
        var connection = Volatile.Read(ref _connection);
        if (connection.IsValueCreated && connection.Value.IsFaulted && _reconnect is not null)
        {
            // A first connect that failed outright (the multiplexer itself reconnects after it exists): try anew,
            // one caller at a time, rather than fail for ever.
            Interlocked.CompareExchange(ref _connection, _reconnect(), connection);
            connection = Volatile.Read(ref _connection);
        }

        return connection.Value.WaitAsync(cancellationToken);
    }

    /// <summary>The keys of <paramref name="table"/> on every primary (several in a cluster).</summary>
    private async IAsyncEnumerable<RedisKey> KeysAsync(
        IConnectionMultiplexer connection, string table, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var servers = connection.GetServers().Where(server => !server.IsReplica).ToList();
        if (!servers.Any(server => server.IsConnected))
        {
            throw new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None, "No Redis primary is connected.", innerException: null, CommandStatus.Unknown);
        }

        var pattern = Layout.PatternFor(table);
        var database = connection.GetDatabase().Database;
        foreach (var server in servers)
        {
            await foreach (var key in server.KeysAsync(database, pattern, ScanPageSize).WithCancellation(cancellationToken))
            {
                // The pattern's '*' also matches keys of another table whose template shares the prefix; keep only ours.
                if (Layout.EntityKeyOf(table, key!) is not null)
                {
                    yield return key;
                }
            }
        }
    }

    private static float[]? ReadRow(EntityQuery query, string key, RedisValue[] values)
    {
        var row = new float[values.Length];
        var any = false;
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i].IsNull)
            {
                row[i] = float.NaN;
                continue;
            }

            any = true;
            if (!float.TryParse(((ReadOnlyMemory<byte>)values[i]).Span, NumberStyles.Float, CultureInfo.InvariantCulture, out row[i]))
            {
                throw new FeatureSchemaException(
                    $"Field '{query.Columns[i]}' of entity '{key}' in table '{query.Schema.Table}' of the redis feature store is not a number.");
            }
        }

        return any ? row : null;
    }
}
