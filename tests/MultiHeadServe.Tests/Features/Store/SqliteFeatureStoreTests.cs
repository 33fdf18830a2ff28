using Microsoft.Data.Sqlite;
using MultiHeadServe.Features.Store;

namespace MultiHeadServe.Tests.Features.Store;

/// <summary>The embedded store on a real SQLite file in a temporary directory.</summary>
public sealed class SqliteFeatureStoreTests : FeatureStoreBehaviourTests
{
    private string DatabasePath => Path.Combine(FilesDirectory, "data", "features.db");

    protected override string ExpectedKind => "sqlite";

    protected override Task<IFeatureStoreWriter> CreateStoreAsync() =>
        Task.FromResult<IFeatureStoreWriter>(new SqliteFeatureStore(DatabasePath));

    [Fact]
    public async Task TheDatabaseIsARealFileInWriteAheadLogMode()
    {
        await SeedUsersAsync();

        Assert.True(File.Exists(DatabasePath));
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString());
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", await command.ExecuteScalarAsync() as string);
    }

    [Fact]
    public async Task SeededTablesOutliveTheStoreThatWroteThem()
    {
        await SeedUsersAsync();
        ((IDisposable)Store).Dispose();

        using var reopened = new SqliteFeatureStore(DatabasePath);
        var again = await FeatureSeeder.SeedAsync(reopened, "users", WriteUsers());
        var rows = await reopened.GetRowsAsync("users", ["u2"], ["tenure"], default);

        Assert.Equal(FeatureSeedOutcome.Skipped, again.Outcome);
        FeatureAssert.Row(rows[0], 3650f);
    }

    [Fact]
    public async Task TwoProcessesSeedingTheSameFileCreateTheTableOnce()
    {
        var path = WriteUsers();
        using var first = new SqliteFeatureStore(DatabasePath);
        using var second = new SqliteFeatureStore(DatabasePath);

        var results = await Task.WhenAll(
            Task.Run(() => FeatureSeeder.SeedAsync(first, "users", path)),
            Task.Run(() => FeatureSeeder.SeedAsync(second, "users", path)));

        Assert.Equal([FeatureSeedOutcome.Created, FeatureSeedOutcome.Skipped], results.Select(result => result.Outcome).Order());
    }

    [Fact]
    public async Task TablesReadTogetherInOneTransactionLeaveNoneOpenWhenTheSecondFails()
    {
        await SeedUsersAsync();
        await FeatureSeeder.SeedAsync(Store, "items", WriteCsv("items.csv", "item_id,price", "i1,9.5"));
        var both = new[] { new EntityLookup("users", ["u1"], ["age"]), new EntityLookup("items", ["i1"], ["price"]) };
        var rows = await Store.GetEntitiesAsync(both, default);
        FeatureAssert.Row(rows[0][0], 31f);
        FeatureAssert.Row(rows[1][0], 9.5f);

        // The second table goes away behind the store's back: the lookup fails after the first table was read.
        await using var other = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString());
        await other.OpenAsync();
        await Execute(other, "DROP TABLE items");
        await Assert.ThrowsAnyAsync<Exception>(async () => await Store.GetEntitiesAsync(both, default));

        // A change made now is seen: the failed lookup's connection did not go back to the pool inside its transaction.
        await Execute(other, "UPDATE users SET age = 99 WHERE user_id = 'u1'");
        FeatureAssert.Row((await Store.GetRowsAsync("users", ["u1"], ["age"], default))[0], 99f);
        FeatureAssert.Row((await Store.GetEntitiesAsync([new EntityLookup("users", ["u1"], ["age"]), new EntityLookup("users", ["u2"], ["age"])], default))[0][0], 99f);

        static async Task Execute(SqliteConnection connection, string sql)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            await command.ExecuteNonQueryAsync();
        }
    }

    [Fact]
    public async Task TableNamesAreCaseInsensitiveAsInSqlite()
    {
        await SeedUsersAsync();

        var rows = await Store.GetRowsAsync("USERS", ["u1"], ["Age"], default);

        FeatureAssert.Row(rows[0], 31f);
    }

    [Fact]
    public async Task AnUnopenableDatabaseFailsPing()
    {
        // A directory where the file should be: SQLite cannot open it.
        var path = Path.Combine(FilesDirectory, "not-a-file.db");
        Directory.CreateDirectory(path);
        using var store = new SqliteFeatureStore(path);

        Assert.False(await store.PingAsync(default));
    }
}
