using System.Data.Common;
using System.Text;
using Npgsql;
using NpgsqlTypes;

namespace MultiHeadServe.Features.Store;

/// <summary>
/// The production feature store: tables in a PostgreSQL database (key <c>text PRIMARY KEY</c>,
/// feature columns <c>real</c>), read with one <c>key = ANY(@keys)</c> statement per table, all of a request's
/// statements sent as one batch.
/// </summary>
/// <remarks>
/// <para>Thread-safe; register as a singleton. Connections come from an
/// <see cref="NpgsqlDataSource"/> pool. With a tight per-request budget, keep connections warm
/// (e.g. <c>Minimum Pool Size=4</c> in the connection string) so no request pays for a connect.</para>
/// <para>Existing tables need not have been seeded by this class: any table with a single-column
/// primary key and numeric (real, double precision, numeric, integer) feature columns will do.
/// NULL reads as <see cref="float.NaN"/>.</para>
/// </remarks>
public sealed class PostgresFeatureStore : FeatureStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;

    /// <summary>Creates a store with its own connection pool, disposed with the store.</summary>
    /// <param name="connectionString">
    /// An Npgsql connection string. Unless it sets <c>Cancellation Timeout</c>, a cancelled lookup does not wait for
    /// the server to acknowledge the cancellation (-1): Npgsql waits for that on the thread that cancels (2 s by
    /// default), and a hung server would otherwise hold a pool thread for every lookup its budget cancels, which
    /// starves the requests that should be answered 503 at once.
    /// </param>
    public PostgresFeatureStore(string connectionString)
        : this(NpgsqlDataSource.Create(WithoutCancellationWait(connectionString)), ownsDataSource: true)
    {
    }

    private static string WithoutCancellationWait(string connectionString)
    {
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        if (given.ContainsKey("Cancellation Timeout") || given.ContainsKey("CancellationTimeout"))
        {
            return connectionString;
        }

        return new NpgsqlConnectionStringBuilder(connectionString) { CancellationTimeout = -1 }.ConnectionString;
    }

    /// <summary>Creates a store over a data source the caller owns (and disposes).</summary>
    public PostgresFeatureStore(NpgsqlDataSource dataSource)
        : this(dataSource, ownsDataSource: false)
    {
    }

    // Identifiers are always quoted here, so PostgreSQL compares them case-sensitively.
    private PostgresFeatureStore(NpgsqlDataSource dataSource, bool ownsDataSource)
        : base("postgres", StringComparer.Ordinal)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
    }

    /// <inheritdoc />
    protected override async ValueTask ReadRowsAsync(IReadOnlyList<EntityQuery> queries, CancellationToken cancellationToken)
    {
        // One statement per table, sent together as one batch: one round trip whatever the number of tables.
        await using var batch = _dataSource.CreateBatch();
        foreach (var query in queries)
        {
            var command = new NpgsqlBatchCommand(FeatureLookup.Statement(query.Schema, query.Columns, "postgres", static (schema, columns) =>
                $"SELECT {FeatureLookup.SelectList(schema, columns)} FROM {SqlIdentifier.Quote(schema.Table)} " +
                $"WHERE {SqlIdentifier.Quote(schema.KeyColumn)} = ANY($1)"));
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. query.Keys], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            batch.BatchCommands.Add(command);
        }

        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        var q = 0;
        do
        {
            var query = queries[q++];
            var readers = new ValueReader[query.Columns.Count];
            for (var i = 0; i < readers.Length; i++)
            {
                readers[i] = ValueReaderFor(reader, i + 1, query.Schema.Table);
            }

            while (await reader.ReadAsync(cancellationToken))
            {
                var values = new float[readers.Length];
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = reader.IsDBNull(i + 1) ? float.NaN : readers[i](reader, i + 1);
                }

                query.Add(reader.GetString(0), values);
            }
        }
        while (q < queries.Count && await reader.NextResultAsync(cancellationToken));
    }

    /// <inheritdoc />
    protected override bool IsSchemaChange(Exception exception) => exception is PostgresException { IsTransient: false };

    /// <inheritdoc />
    public override async ValueTask<bool> PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var command = _dataSource.CreateCommand("SELECT 1");
            return await command.ExecuteScalarAsync(cancellationToken) is not null;
        }
        catch (DbException) when (!cancellationToken.IsCancellationRequested)
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

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        // Replicas starting together all try to seed: the lock (released at commit or rollback)
        // lets the first create the table and the others find it there.
        await using (var lockTable = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext($1 || current_schema() || '.' || $2))", connection, transaction))
        {
            lockTable.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "multiheadserve.features:" });
            lockTable.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schema.Table });
            await lockTable.ExecuteNonQueryAsync(cancellationToken);
        }

        bool exists;
        await using (var check = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", connection, transaction))
        {
            check.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table });
            exists = (bool)(await check.ExecuteScalarAsync(cancellationToken))!;
        }

        if (exists && !replace)
        {
            await transaction.RollbackAsync(cancellationToken);
            return new FeatureSeedResult(schema.Table, FeatureSeedOutcome.Skipped, 0);
        }

        var definition = new StringBuilder();
        if (exists)
        {
            definition.Append("DROP TABLE ").Append(table).Append("; ");
        }

        definition.Append("CREATE TABLE ").Append(table).Append(" (").Append(key).Append(" text NOT NULL PRIMARY KEY");
        foreach (var column in columns)
        {
            definition.Append(", ").Append(column).Append(" real");
        }

        definition.Append(')');
        await using (var create = new NpgsqlCommand(definition.ToString(), connection, transaction))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        long count = 0;
        // Binary COPY: the fastest bulk path, and still inside the transaction.
        await using (var import = await connection.BeginBinaryImportAsync(
            $"COPY {table} ({key}, {string.Join(", ", columns)}) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            await foreach (var row in rows.WithCancellation(cancellationToken))
            {
                if (row.Values.Length != columns.Count)
                {
                    throw new ArgumentException(
                        $"Row '{row.Key}' has {row.Values.Length} values; table '{schema.Table}' has {columns.Count} feature columns.",
                        nameof(rows));
                }

                await import.StartRowAsync(cancellationToken);
                await import.WriteAsync(row.Key, NpgsqlDbType.Text, cancellationToken);
                foreach (var value in row.Values)
                {
                    await import.WriteAsync(value, NpgsqlDbType.Real, cancellationToken);
                }

                count++;
            }

            await import.CompleteAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        Remember(schema);
        return new FeatureSeedResult(schema.Table, exists ? FeatureSeedOutcome.Replaced : FeatureSeedOutcome.Created, count);
    }

    /// <summary>Disposes the connection pool when the store created it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_ownsDataSource)
        {
            await _dataSource.DisposeAsync();
        }
    }

    private delegate float ValueReader(NpgsqlDataReader reader, int ordinal);

    private static ValueReader ValueReaderFor(NpgsqlDataReader reader, int ordinal, string table)
    {
        var type = reader.GetFieldType(ordinal);
        if (type == typeof(float))
        {
            return static (r, i) => r.GetFloat(i);
        }

        if (type == typeof(double))
        {
            return static (r, i) => (float)r.GetDouble(i);
        }

        if (type == typeof(decimal))
        {
            return static (r, i) => (float)r.GetDecimal(i);
        }

        if (type == typeof(short))
        {
            return static (r, i) => r.GetInt16(i);
        }

        if (type == typeof(int))
        {
            return static (r, i) => r.GetInt32(i);
        }

        if (type == typeof(long))
        {
            return static (r, i) => r.GetInt64(i);
        }

        throw new FeatureSchemaException(
            $"Column '{reader.GetName(ordinal)}' of feature table '{table}' has type {reader.GetDataTypeName(ordinal)}; feature columns must be numeric.");
    }

    /// <inheritdoc />
    protected override async ValueTask<FeatureTableSchema?> ReadSchemaAsync(string table, CancellationToken cancellationToken)
    {
        // to_regclass resolves the quoted name through the search path, as the lookup query will.
        await using var command = _dataSource.CreateCommand(
            """
            SELECT a.attname, COALESCE(i.indisprimary, false)
            FROM pg_catalog.pg_attribute a
            LEFT JOIN pg_catalog.pg_index i
              ON i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY (i.indkey)
            WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = SqlIdentifier.Quote(table) });

        var columns = new List<string>();
        var keys = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                (reader.GetBoolean(1) ? keys : columns).Add(reader.GetString(0));
            }
        }

        if (columns.Count == 0 && keys.Count == 0)
        {
            return null;
        }

        if (keys.Count != 1)
        {
            throw new FeatureSchemaException(
                $"Feature table '{table}' in the postgres feature store needs a single-column primary key (the entity key); it has {keys.Count}.");
        }

        return new FeatureTableSchema(table, keys[0], columns);
    }
}
