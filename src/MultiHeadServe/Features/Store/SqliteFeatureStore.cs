using System.Collections.Concurrent;
using System.Data.Common;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// The embedded feature store: one SQLite file, the default when no PostgreSQL connection string is
/// configured.
/// </summary>
/// <remarks>
/// <para>Thread-safe; register as a singleton. A lookup borrows an open connection whose lookup
/// statements are already prepared (parsing the SQL and opening the file cost more than the lookup
/// itself), and the database runs in write-ahead-log mode, so concurrent lookups never block each
/// other and a seeding writer does not block them either.</para>
/// <para>Microsoft.Data.Sqlite runs its "async" methods synchronously: a lookup occupies the
/// calling thread for its (sub-millisecond) duration, and a timeout cannot interrupt it midway.
/// A lookup that meets a lock waits at most <see cref="LookupTimeoutSeconds"/>.</para>
/// <para>Disposing clears this file's connection pool so the file can be moved or deleted.</para>
/// </remarks>
public sealed class SqliteFeatureStore : FeatureStore, IDisposable
{
    /// <summary>How long a lookup waits on a locked database before failing as busy (transient).</summary>
    public const int LookupTimeoutSeconds = 1;

    /// <summary>Open readers kept between lookups; more than this many concurrent lookups open and close their own.</summary>
    private static readonly int MaxIdleReaders = Environment.ProcessorCount * 4;

    private readonly string _connectionString;
    private readonly ConcurrentBag<LookupReader> _idleReaders = [];
    private volatile bool _disposed;
    private int _walEnabled;

    /// <summary>Opens (or, on first write, creates) the database at <paramref name="databasePath"/>.</summary>
    /// <param name="databasePath">The database file, e.g. <c>data/features.db</c>; its directory is created if missing.</param>
    public SqliteFeatureStore(string databasePath)
        : base("sqlite", StringComparer.OrdinalIgnoreCase)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        DatabasePath = Path.GetFullPath(databasePath);
        Directory.CreateDirectory(Path.GetDirectoryName(DatabasePath)!);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = DatabasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            // Private cache: in shared-cache mode concurrent readers would contend on table locks.
            Cache = SqliteCacheMode.Private,
            Pooling = true,
        }.ToString();
    }

    /// <summary>The absolute path of the database file.</summary>
    public string DatabasePath { get; }

    /// <inheritdoc />
    protected override async ValueTask ReadRowsAsync(IReadOnlyList<EntityQuery> queries, CancellationToken cancellationToken)
    {
        // In-process, so "one round trip" is one borrowed connection: each table's statement runs on it in turn.
        var reader = await RentReaderAsync(cancellationToken);
        try
        {
            // Several tables (a user and an item) are read in one transaction: from one snapshot of the file, so a
            // refresh between the two reads cannot pair old rows with new ones, and with one lock on the database
            // instead of one per table.
            var together = queries.Count > 1;
            if (together)
            {
                reader.Run("BEGIN");
            }

            foreach (var query in queries)
            {
                // All keys travel as one JSON array parameter: the statement text is the same whatever the
                // number of keys, so it is prepared once per reader and there is no parameter-count limit to reach.
                // One key (most requests) is compared directly, which spares SQLite the JSON.
                var single = query.Keys.Count == 1;
                var command = reader.Statement(single
                    ? FeatureLookup.Statement(query.Schema, query.Columns, "sqlite=", static (schema, columns) =>
                        $"SELECT {FeatureLookup.SelectList(schema, columns)} FROM {SqlIdentifier.Quote(schema.Table)} " +
                        $"WHERE {SqlIdentifier.Quote(schema.KeyColumn)} = $keys")
                    : FeatureLookup.Statement(query.Schema, query.Columns, "sqlite-in", static (schema, columns) =>
                        $"SELECT {FeatureLookup.SelectList(schema, columns)} FROM {SqlIdentifier.Quote(schema.Table)} " +
                        $"WHERE {SqlIdentifier.Quote(schema.KeyColumn)} IN (SELECT value FROM json_each($keys))"));
                command.Parameters[0].Value = single ? query.Keys[0] : JsonSerializer.Serialize(query.Keys);
                await using var rows = await command.ExecuteReaderAsync(cancellationToken);
                while (await rows.ReadAsync(cancellationToken))
                {
                    var values = new float[query.Columns.Count];
                    for (var i = 0; i < values.Length; i++)
                    {
                        // SQLite stores NaN as NULL; NULL reads back as NaN.
                        values[i] = rows.IsDBNull(i + 1) ? float.NaN : (float)rows.GetDouble(i + 1);
                    }

                    query.Add(rows.GetString(0), values);
                }
            }

            if (together)
            {
                reader.Run("COMMIT");
            }

            ReturnReader(reader);
        }
        catch
        {
            // A reader that failed is not reused; its statements may refer to a table that changed.
            reader.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    protected override bool IsSchemaChange(Exception exception) =>
        exception is SqliteException sqlite && !TransientFailure.IsTransient(sqlite);

    /// <inheritdoc />
    public override async ValueTask<bool> PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1";
            command.CommandTimeout = LookupTimeoutSeconds;
            return await command.ExecuteScalarAsync(cancellationToken) is not null;
        }
        catch (Exception exception) when (exception is DbException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public override async ValueTask<FeatureSeedResult> WriteTableAsync(
        FeatureTableSchema schema,
        IAsyncEnumerable<FeatureRow> rows,
        bool replace,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var (table, key, columns) = SqlIdentifier.QuoteSchema(schema);

        await using var connection = await OpenAsync(cancellationToken);
        // BEGIN IMMEDIATE takes the write lock before the existence check, so two processes seeding
        // the same file at once create the table once.
        await using var transaction = connection.BeginTransaction(deferred: false);

        bool exists;
        await using (var check = connection.CreateCommand())
        {
            check.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $name COLLATE NOCASE";
            check.Parameters.AddWithValue("$name", schema.Table);
            exists = (long)(await check.ExecuteScalarAsync(cancellationToken))! > 0;
        }

        if (exists && !replace)
        {
            return new FeatureSeedResult(schema.Table, FeatureSeedOutcome.Skipped, 0);
        }

        await using (var create = connection.CreateCommand())
        {
            var definition = new StringBuilder();
            if (exists)
            {
                definition.Append("DROP TABLE ").Append(table).Append("; ");
            }

            // WITHOUT ROWID: rows live in the primary-key b-tree, so a lookup is one b-tree search.
            definition.Append("CREATE TABLE ").Append(table).Append(" (").Append(key).Append(" TEXT NOT NULL PRIMARY KEY");
            foreach (var column in columns)
            {
                definition.Append(", ").Append(column).Append(" REAL");
            }

            definition.Append(") WITHOUT ROWID");
            create.CommandText = definition.ToString();
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        long count = 0;
        await using (var insert = connection.CreateCommand())
        {
            insert.CommandText =
                $"INSERT INTO {table} ({key}, {string.Join(", ", columns)}) " +
                $"VALUES ($key{string.Concat(Enumerable.Range(0, columns.Count).Select(i => $", $v{i}"))})";
            var keyParameter = insert.Parameters.Add("$key", SqliteType.Text);
            var valueParameters = Enumerable.Range(0, columns.Count)
                .Select(i => insert.Parameters.Add($"$v{i}", SqliteType.Real))
                .ToArray();
            insert.Prepare();

            await foreach (var row in rows.WithCancellation(cancellationToken))
            {
                if (row.Values.Length != valueParameters.Length)
                {
                    throw new ArgumentException(
                        $"Row '{row.Key}' has {row.Values.Length} values; table '{schema.Table}' has {valueParameters.Length} feature columns.",
                        nameof(rows));
                }

                keyParameter.Value = row.Key;
                for (var i = 0; i < valueParameters.Length; i++)
                {
                    // Microsoft.Data.Sqlite refuses to bind NaN; SQLite would store NULL anyway.
                    valueParameters[i].Value = float.IsNaN(row.Values[i]) ? DBNull.Value : (double)row.Values[i];
                }

                await insert.ExecuteNonQueryAsync(cancellationToken);
                count++;
            }
        }

        await transaction.CommitAsync(cancellationToken);
        Remember(schema);
        return new FeatureSeedResult(schema.Table, exists ? FeatureSeedOutcome.Replaced : FeatureSeedOutcome.Created, count);
    }

    /// <summary>Closes the idle readers and clears the connection pool of this database file.</summary>
    public void Dispose()
    {
        _disposed = true;
        while (_idleReaders.TryTake(out var reader))
        {
            reader.Dispose();
        }

        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }

    private async ValueTask<LookupReader> RentReaderAsync(CancellationToken cancellationToken) =>
        _idleReaders.TryTake(out var reader) ? reader : new LookupReader(await OpenAsync(cancellationToken));

    private void ReturnReader(LookupReader reader)
    {
        if (!_disposed && _idleReaders.Count < MaxIdleReaders)
        {
            _idleReaders.Add(reader);
        }
        else
        {
            reader.Dispose();
        }
    }

    private async ValueTask<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            if (Volatile.Read(ref _walEnabled) == 0)
            {
                // Persistent in the file; the first connection of the process switches it on.
                await using var wal = connection.CreateCommand();
                wal.CommandText = "PRAGMA journal_mode = WAL";
                await wal.ExecuteNonQueryAsync(cancellationToken);
                Volatile.Write(ref _walEnabled, 1);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    protected override async ValueTask<FeatureTableSchema?> ReadSchemaAsync(string table, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, pk FROM pragma_table_info($table) ORDER BY cid";
        command.Parameters.AddWithValue("$table", table);
        command.CommandTimeout = LookupTimeoutSeconds;

        var columns = new List<string>();
        var keys = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                (reader.GetInt64(1) > 0 ? keys : columns).Add(reader.GetString(0));
            }
        }

        if (columns.Count == 0 && keys.Count == 0)
        {
            return null;
        }

        if (keys.Count != 1)
        {
            throw new FeatureSchemaException(
                $"Feature table '{table}' in the sqlite feature store needs a single-column primary key (the entity key); it has {keys.Count}.");
        }

        return new FeatureTableSchema(table, keys[0], columns);
    }

    /// <summary>An open connection and its prepared lookup statements, used by one lookup at a time.</summary>
    private sealed class LookupReader(SqliteConnection connection) : IDisposable
    {
        private readonly Dictionary<string, SqliteCommand> _statements = new(StringComparer.Ordinal);

        /// <summary>The prepared statement for <paramref name="text"/>, whose one parameter is <c>$keys</c>.</summary>
        public SqliteCommand Statement(string text) => Prepared(text, keys: true);

        /// <summary>Runs <paramref name="text"/>, a statement without parameters (BEGIN, COMMIT).</summary>
        public void Run(string text) => Prepared(text, keys: false).ExecuteNonQuery();

        /// <summary>The statement for <paramref name="text"/>, prepared on this connection the first time it is asked for.</summary>
        private SqliteCommand Prepared(string text, bool keys)
        {
            if (!_statements.TryGetValue(text, out var command))
            {
                command = connection.CreateCommand();
                command.CommandText = text;
                command.CommandTimeout = LookupTimeoutSeconds;
                if (keys)
                {
                    command.Parameters.Add("$keys", SqliteType.Text);
                }

                command.Prepare();
                _statements[text] = command;
            }

            return command;
        }

        public void Dispose()
        {
            foreach (var command in _statements.Values)
            {
                command.Dispose();
            }

            // A lookup that failed between BEGIN and COMMIT: the connection goes back to the driver's pool, and would
            // take its transaction along, so that whoever opens it next reads the old snapshot for ever.
            if (connection.State == System.Data.ConnectionState.Open && SQLitePCL.raw.sqlite3_get_autocommit(connection.Handle) == 0)
            {
                SQLitePCL.raw.sqlite3_exec(connection.Handle, "ROLLBACK");
            }

            connection.Dispose();
        }
    }
}
