using MultiHeadServe.Features.Store;
using MultiHeadServe.Tests.Infrastructure;
using Npgsql;

namespace MultiHeadServe.Tests.Features.Store;

/// <summary>The production store against a real PostgreSQL server; a schema of its own per test.</summary>
[TakesAbout(seconds: 4)]
public sealed class PostgresFeatureStoreTests(PostgresServer server) : FeatureStoreBehaviourTests, IClassFixture<PostgresServer>
{
    private string? _connectionString;

    private string ConnectionString => _connectionString ?? throw new InvalidOperationException("Created in CreateStoreAsync.");

    protected override string ExpectedKind => "postgres";

    protected override async Task<IFeatureStoreWriter> CreateStoreAsync()
    {
        _connectionString = await server.CreateSchemaAsync();
        return new PostgresFeatureStore(_connectionString);
    }

    [Fact]
    public async Task TwoReplicasSeedingTogetherCreateTheTableOnce()
    {
        var path = WriteUsers();
        await using var first = new PostgresFeatureStore(ConnectionString);
        await using var second = new PostgresFeatureStore(ConnectionString);

        var results = await Task.WhenAll(
            Task.Run(() => FeatureSeeder.SeedAsync(first, "users", path)),
            Task.Run(() => FeatureSeeder.SeedAsync(second, "users", path)));

        Assert.Equal([FeatureSeedOutcome.Created, FeatureSeedOutcome.Skipped], results.Select(result => result.Outcome).Order());
    }

    [Fact]
    public async Task TablesLoadedByOtherToolsAreReadWhateverTheirNumericTypes()
    {
        await ExecuteAsync(
            """
            CREATE TABLE accounts (account_id text PRIMARY KEY, balance double precision, visits integer, share numeric, flags smallint, big bigint, rate real);
            INSERT INTO accounts VALUES ('a1', 12.5, 7, 0.125, 3, 10000000000, 1.5), ('a2', NULL, NULL, NULL, NULL, NULL, NULL);
            """);

        var rows = await Store.GetRowsAsync("accounts", ["a1", "a2"], ["rate", "big", "flags", "share", "visits", "balance"], default);

        FeatureAssert.Row(rows[0], 1.5f, 1e10f, 3f, 0.125f, 7f, 12.5f);
        Assert.All(rows[1]!, value => Assert.True(float.IsNaN(value)));
    }

    [Fact]
    public async Task ANonNumericColumnIsASchemaError()
    {
        await ExecuteAsync("CREATE TABLE accounts (account_id text PRIMARY KEY, name text); INSERT INTO accounts VALUES ('a1', 'Ada');");

        var error = await Assert.ThrowsAsync<FeatureSchemaException>(() => Store.GetRowsAsync("accounts", ["a1"], ["name"], default).AsTask());

        Assert.Contains("'name'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ATableReplacedUnderneathIsReadAfresh()
    {
        await SeedUsersAsync();
        FeatureAssert.Row((await Store.GetRowsAsync("users", ["u1"], ["age"], default))[0], 31f);
        await ExecuteAsync("DROP TABLE users; CREATE TABLE users (uid text PRIMARY KEY, age real); INSERT INTO users VALUES ('u1', 77);");

        // The first lookup meets the stale shape and fails; the next one reads the new shape.
        await Assert.ThrowsAsync<PostgresException>(() => Store.GetRowsAsync("users", ["u1"], ["age"], default).AsTask());
        var rows = await Store.GetRowsAsync("users", ["u1"], ["age"], default);

        FeatureAssert.Row(rows[0], 77f);
    }

    [Fact]
    public async Task AnUnreachableServerFailsPing()
    {
        var unreachable = new NpgsqlConnectionStringBuilder(ConnectionString) { Port = 1, Timeout = 2 }.ConnectionString;
        await using var store = new PostgresFeatureStore(unreachable);

        Assert.False(await store.PingAsync(default));
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var dataSource = NpgsqlDataSource.Create(ConnectionString);
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }
}
