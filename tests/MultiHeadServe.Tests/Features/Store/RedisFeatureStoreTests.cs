using MultiHeadServe.Features.Store;
using MultiHeadServe.Tests.Infrastructure;
using StackExchange.Redis;

namespace MultiHeadServe.Tests.Features.Store;

/// <summary>
/// The Redis store against a real redis-server: every behaviour the SQL stores have, plus what is Redis's own
/// (key layout, exact float text, hashes written by other clients). Each test's keys have a prefix of their own.
/// </summary>
public sealed class RedisFeatureStoreTests(RedisServer server) : FeatureStoreBehaviourTests, IClassFixture<RedisServer>
{
    private readonly string _prefix = RedisServer.UniquePrefix();

    protected override string ExpectedKind => "redis";

    // Redis keeps the entity key in the hash's name, not in a field: the CSV's key column name is not stored.
    protected override string ExpectedKeyColumn => RedisFeatureStore.KeyColumnName;

    protected override Task<IFeatureStoreWriter> CreateStoreAsync() =>
        Task.FromResult<IFeatureStoreWriter>(new RedisFeatureStore(server.Configuration, Layout()));

    private RedisKeyLayout Layout(Dictionary<string, string>? tables = null) =>
        new() { Template = _prefix + "{table}:{key}", Tables = tables ?? [] };

    [Fact]
    public async Task EntitiesAreHashesAtTheTemplatesKeyWithFloatsWrittenAsTheirShortestExactText()
    {
        await FeatureSeeder.SeedAsync(Store, "items", WriteCsv("items.csv", "item_id,ctr,price", "i1,0.0472,34.17"));

        // Not 0.047199999999999999: the text any client reads back as the value the CSV meant.
        Assert.Equal("$6\r\n0.0472", await server.CommandAsync($"HGET {_prefix}items:i1 ctr"));
        Assert.Equal("$5\r\n34.17", await server.CommandAsync($"HGET {_prefix}items:i1 price"));
        FeatureAssert.Row((await Store.GetRowsAsync("items", ["i1"], ["ctr", "price"], default))[0], 0.0472f, 34.17f);
    }

    [Fact]
    public async Task HashesWrittenByOtherClientsAreReadAtTheirConfiguredKeysAndAMissingFieldIsNaN()
    {
        // A team's existing layout: "user:<id>", values as its own clients wrote them.
        await server.CommandAsync("HSET user:" + _prefix + "7 age 31 score 0.1 spend 1e3");
        await server.CommandAsync("HSET user:" + _prefix + "8 age 45");
        await using var store = new RedisFeatureStore(server.Configuration, Layout(new() { ["users"] = "user:" + _prefix + "{key}" }));

        var rows = await store.GetRowsAsync("users", ["7", "nobody"], ["age"], default);
        var schema = await store.DescribeTableAsync("users", default);

        Assert.NotNull(schema);
        Assert.Equal(["age", "score", "spend"], schema.Columns.Order());
        FeatureAssert.Row(rows[0], 31f);
        Assert.Null(rows[1]);
        var both = await store.GetRowsAsync("users", ["7", "8"], ["spend", "score", "age"], default);
        FeatureAssert.Row(both[0], 1000f, 0.1f, 31f);
        Assert.True(float.IsNaN(both[1]![0]) && float.IsNaN(both[1]![1]));
        Assert.Equal(45f, both[1]![2]);
    }

    [Fact]
    public async Task AFieldThatIsNotANumberIsASchemaErrorNamingIt()
    {
        await SeedUsersAsync();
        await server.CommandAsync($"HSET {_prefix}users:u2 age forty");

        var error = await Assert.ThrowsAsync<FeatureSchemaException>(() => Store.GetRowsAsync("users", ["u1", "u2"], ["age"], default).AsTask());

        Assert.Contains("'age' of entity 'u2'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EveryTableOfARequestIsReadInOneTransactionOfHmgets()
    {
        await SeedUsersAsync();
        await FeatureSeeder.SeedAsync(Store, "items", WriteCsv("items.csv", "item_id,price", "i1,9.5", "i2,3"));
        await Store.GetEntitiesAsync([new("users", ["u1"], ["age"]), new("items", ["i1"], ["price"])], default);
        var before = await HmgetCallsAsync();
        var transactionsBefore = await server.CommandCallsAsync("exec");

        var found = await Store.GetEntitiesAsync(
            [new("users", ["u1", "u2", "u1", "zz"], ["age", "score"]), new("items", ["i2", "i1", "i2"], ["price"])], default);

        // One HMGET per distinct key (3 users, 2 items), nothing else: no per-request SCAN or HKEYS.
        Assert.Equal(5, await HmgetCallsAsync() - before);
        Assert.Equal(1, await server.CommandCallsAsync("exec") - transactionsBefore);
        FeatureAssert.Row(found[0][0], 31f, 0.25f);
        FeatureAssert.Row(found[0][2], 31f, 0.25f);
        Assert.Null(found[0][3]);
        FeatureAssert.Row(found[1][0], 3f);
        FeatureAssert.Row(found[1][1], 9.5f);
    }

    [Fact]
    public async Task RequestsForATableNotLoadedYetScanTheKeyspaceAtMostOnceASecond()
    {
        await SeedUsersAsync();
        var before = await server.CommandCallsAsync("scan");

        await Assert.ThrowsAsync<FeatureSchemaException>(() => Store.GetRowsAsync("items", ["i1"], ["price"], default).AsTask());
        var afterFirst = await server.CommandCallsAsync("scan");
        for (var i = 0; i < 5; i++)
        {
            await Assert.ThrowsAsync<FeatureSchemaException>(() => Store.GetRowsAsync("items", ["i1"], ["price"], default).AsTask());
        }

        Assert.True(afterFirst > before, "The first lookup should have looked for the table.");
        Assert.Equal(afterFirst, await server.CommandCallsAsync("scan"));
        await FeatureSeeder.SeedAsync(Store, "items", WriteCsv("items.csv", "item_id,price", "i1,9.5"));
        FeatureAssert.Row((await Store.GetRowsAsync("items", ["i1"], ["price"], default))[0], 9.5f);
    }

    [Fact]
    public async Task AnUnreachableServerFailsPingAndLookupsTransiently()
    {
        await using var store = new RedisFeatureStore("127.0.0.1:1,connectTimeout=500", Layout());

        Assert.False(await store.PingAsync(default));
        var error = await Assert.ThrowsAnyAsync<RedisException>(() => store.GetRowsAsync("users", ["u1"], ["age"], default).AsTask());
        Assert.IsType<RedisConnectionException>(error);
    }

    [Theory]
    [InlineData("users:{key}:{key}")]
    [InlineData("users")]
    [InlineData("")]
    public void AKeyTemplateWithoutExactlyOneKeyPlaceholderIsRefused(string template)
    {
        var error = Assert.Throws<ArgumentException>(() => new RedisFeatureStore(server.Configuration, new RedisKeyLayout { Template = template }));

        Assert.Contains("must hold {key} exactly once", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeyPatternsEscapeTheTemplatesGlobCharacters()
    {
        var layout = new RedisKeyLayout { Template = "f[1]*:{table}?{key}" };

        Assert.Equal("f[1]*:users?u1", layout.KeyFor("users", "u1"));
        Assert.Equal(@"f\[1\]\*:users\?*", layout.PatternFor("users"));
        Assert.Equal("u1", layout.EntityKeyOf("users", "f[1]*:users?u1"));
        Assert.Null(layout.EntityKeyOf("users", "f[1]*:items?u1"));
    }

    private Task<long> HmgetCallsAsync() => server.CommandCallsAsync("hmget");
}
