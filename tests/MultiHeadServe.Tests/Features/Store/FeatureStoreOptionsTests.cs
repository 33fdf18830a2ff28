using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MultiHeadServe.Features.Store;

namespace MultiHeadServe.Tests.Features.Store;

public sealed class FeatureStoreOptionsTests
{
    [Fact]
    public void TheDefaultsAreValidAndChooseTheEmbeddedStore()
    {
        var options = new FeatureStoreOptions();

        Assert.Empty(options.Validate());
        Assert.Equal("sqlite", options.ResolveProvider());
        Assert.Equal(200, options.TimeoutMilliseconds);
    }

    [Fact]
    public void AConnectionStringChoosesPostgresUnlessTheProviderSaysOtherwise()
    {
        var implied = new FeatureStoreOptions { PostgresConnectionString = "Host=db" };
        var explicitSqlite = implied with { Provider = "SQLite" };

        Assert.Equal("postgres", implied.ResolveProvider());
        Assert.Equal("sqlite", explicitSqlite.ResolveProvider());
    }

    [Fact]
    public void EveryInvalidSettingIsReportedByItsKey()
    {
        var options = new FeatureStoreOptions
        {
            Provider = "postgres",
            TimeoutMilliseconds = 5,
            Retry = new() { MaxAttempts = 0, BaseDelayMilliseconds = -1, AttemptTimeoutMilliseconds = 3 },
            CircuitBreaker = new() { FailureRatio = 0, MinimumThroughput = 1, SamplingDurationSeconds = 0.1, BreakDurationSeconds = 0 },
        };

        var errors = options.Validate();

        Assert.Equal(
            [
                "FeatureStore:PostgresConnectionString",
                "FeatureStore:TimeoutMilliseconds",
                "FeatureStore:Retry:MaxAttempts",
                "FeatureStore:Retry:BaseDelayMilliseconds",
                "FeatureStore:Retry:AttemptTimeoutMilliseconds",
                "FeatureStore:CircuitBreaker:FailureRatio",
                "FeatureStore:CircuitBreaker:MinimumThroughput",
                "FeatureStore:CircuitBreaker:SamplingDurationSeconds",
                "FeatureStore:CircuitBreaker:BreakDurationSeconds",
            ],
            errors.Select(error => error.Split(' ')[0]));
    }

    [Fact]
    public void AnUnknownProviderIsReported()
    {
        var errors = new FeatureStoreOptions { Provider = "mysql" }.Validate();

        Assert.Contains("FeatureStore:Provider is 'mysql'; expected 'sqlite', 'postgres' or 'redis'.", errors);
    }

    [Fact]
    public void TheFeatureStoreSectionBindsIncludingNestedSettings()
    {
        var configuration = Configuration(new()
        {
            ["FeatureStore:Provider"] = "postgres",
            ["FeatureStore:PostgresConnectionString"] = "Host=db;Username=mhs",
            ["FeatureStore:TimeoutMilliseconds"] = "350",
            ["FeatureStore:Retry:MaxAttempts"] = "4",
            ["FeatureStore:Retry:BaseDelayMilliseconds"] = "25",
            ["FeatureStore:CircuitBreaker:FailureRatio"] = "0.25",
            ["FeatureStore:CircuitBreaker:MinimumThroughput"] = "50",
            ["FeatureStore:CircuitBreaker:SamplingDurationSeconds"] = "20",
            ["FeatureStore:CircuitBreaker:BreakDurationSeconds"] = "2.5",
        });

        var options = configuration.GetSection(FeatureStoreOptions.SectionName).Get<FeatureStoreOptions>()!;

        Assert.Equal(
            new FeatureStoreOptions
            {
                Provider = "postgres",
                PostgresConnectionString = "Host=db;Username=mhs",
                TimeoutMilliseconds = 350,
                Retry = new() { MaxAttempts = 4, BaseDelayMilliseconds = 25 },
                CircuitBreaker = new() { FailureRatio = 0.25, MinimumThroughput = 50, SamplingDurationSeconds = 20, BreakDurationSeconds = 2.5 },
            },
            options);
    }

    [Fact]
    public async Task AddFeatureStoreServesLookupsThroughTheResilientStoreOverTheConfiguredSqliteFile()
    {
        using var files = new TemporaryDirectory();
        var database = Path.Combine(files.Path, "features.db");
        // A generous budget: this is about wiring, and a cold first call on a busy machine is slow.
        await using var services = Services(new() { ["FeatureStore:SqlitePath"] = database, ["FeatureStore:TimeoutMilliseconds"] = "10000" });

        var writer = services.GetRequiredService<IFeatureStoreWriter>();
        await FeatureSeeder.SeedAsync(writer, "users", files.Write("users.csv", "user_id,age", "u1,31"));
        var store = services.GetRequiredService<IFeatureStore>();
        var rows = await store.GetRowsAsync("users", ["u1"], ["age"], default);

        Assert.IsType<SqliteFeatureStore>(writer);
        Assert.IsType<ResilientFeatureStore>(store);
        Assert.Equal("sqlite", store.Kind);
        Assert.True(File.Exists(database));
        FeatureAssert.Row(rows[0], 31f);
        Assert.Equal(1, services.GetRequiredService<FeatureStoreMetrics>().FetchCount);
    }

    [Theory]
    [InlineData("FeatureStore:TimeoutMilliseconds", "0", "FeatureStore:TimeoutMilliseconds must be between 10 and 600000.")]
    [InlineData("FeatureStore:MaxAbandonedCalls", "0", "FeatureStore:MaxAbandonedCalls must be between 1 and 100000.")]
    public async Task AddFeatureStoreRejectsInvalidSettingsByKey(string key, string value, string message)
    {
        await using var services = Services(new() { [key] = value });

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<FeatureStoreOptions>>().Value);

        Assert.Contains(message, error.Failures);
    }

    [Fact]
    public async Task ARedisConfigurationSelectsRedisWithTheKeyTemplatesItNames()
    {
        await using var services = Services(new()
        {
            ["FeatureStore:RedisConfiguration"] = "127.0.0.1:1",
            ["FeatureStore:RedisKeys:Template"] = "features:{table}:{key}",
            ["FeatureStore:RedisKeys:Tables:users"] = "user:{key}",
        });

        var writer = Assert.IsType<RedisFeatureStore>(services.GetRequiredService<IFeatureStoreWriter>());

        Assert.Equal("redis", services.GetRequiredService<IFeatureStore>().Kind);
        Assert.Equal("user:u1", writer.Layout.KeyFor("users", "u1"));
        Assert.Equal("features:items:i1", writer.Layout.KeyFor("items", "i1"));
    }

    [Theory]
    [InlineData("FeatureStore:RedisKeys:Template", "features:{table}", "FeatureStore:RedisKeys:Template is 'features:{table}'; a key template must hold {key} exactly once")]
    [InlineData("FeatureStore:RedisKeys:Tables:users", "{key}:{key}", "FeatureStore:RedisKeys:Tables:users is '{key}:{key}'")]
    [InlineData("FeatureStore:Provider", "redis", "FeatureStore:RedisConfiguration is required for the redis provider.")]
    public void BadRedisSettingsAreReportedByKey(string key, string value, string message)
    {
        var settings = new Dictionary<string, string?> { [key] = value };
        if (key != "FeatureStore:Provider")
        {
            settings["FeatureStore:RedisConfiguration"] = "localhost";
        }

        var options = Configuration(settings).GetSection(FeatureStoreOptions.SectionName).Get<FeatureStoreOptions>()!;

        Assert.Contains(options.Validate(), error => error.StartsWith(message, StringComparison.Ordinal));
    }

    private static IConfiguration Configuration(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

    private static ServiceProvider Services(Dictionary<string, string?> settings)
    {
        var services = new ServiceCollection();
        services.AddSingleton(Configuration(settings));
        services.AddLogging();
        services.AddMetrics();
        services.AddFeatureStore();
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }
}
