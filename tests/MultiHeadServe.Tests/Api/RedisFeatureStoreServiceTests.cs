using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using MultiHeadServe.Features.Store;
using MultiHeadServe.Tests.Infrastructure;
using Xunit.Abstractions;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// The service on a real Redis feature store (a redis-server of this class's own: its tests stop and freeze it):
/// the same rankings as from SQLite in one round trip per request, 503 + Retry-After within a second while Redis is
/// down or frozen under load and service again soon after, and an empty Redis reported, never written, until
/// <c>mhs features import</c> (the same code) loads it.
/// </summary>
[Collection(nameof(RedisOutages))]
public sealed class RedisFeatureStoreServiceTests(RedisServer server, ITestOutputHelper output) : IClassFixture<RedisServer>
{
    private const string Predict = "/v1/models/ranking/predict";

    [Fact]
    public async Task RankingFromRedisEqualsRankingFromSqliteInOneRoundTripWhateverTheNumberOfInstances()
    {
        var keys = await ImportAsync();
        await using var proxy = new RoundTripCountingProxy(server.Port);
        // A generous budget: this is about equal answers and round trips, not about time on a busy machine.
        await using var redis = RedisApp(keys, configuration: $"127.0.0.1:{proxy.Port}", timeoutMilliseconds: 5000);
        await using var sqlite = new ServeFactory();
        using var redisClient = redis.CreateClient();
        using var sqliteClient = sqlite.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await redisClient.GetAsync("/readyz")).StatusCode);

        var tripsPerRequest = new List<string>();
        foreach (var count in (int[])[1, 2, 32, 64, 256])
        {
            var body = new { instances = Instances(count, seed: count) };
            var before = proxy.RoundTrips;
            var execBefore = await server.CommandCallsAsync("exec");
            var fromRedis = await redisClient.PostJsonAsync(Predict, body);
            var trips = proxy.RoundTrips - before;
            var transactions = await server.CommandCallsAsync("exec") - execBefore;
            var fromSqlite = await sqliteClient.PostJsonAsync(Predict, body);

            Assert.Equal(HttpStatusCode.OK, fromRedis.StatusCode);
            tripsPerRequest.Add($"{count}:{trips}:{transactions}");
            Assert.Equal(
                (await fromSqlite.JsonAsync()).GetProperty("predictions").GetRawText(),
                (await fromRedis.JsonAsync()).GetProperty("predictions").GetRawText());
        }

        // instances:round trips:transactions, for each request.
        Assert.Equal(["1:1:1", "2:1:1", "32:1:1", "64:1:1", "256:1:1"], tripsPerRequest);

        // Every row of the reference, too: the committed expected outputs.
        var reference = ReferenceData.Load("ranking");
        var all = await (await redisClient.PostJsonAsync(Predict, new { instances = reference.Entities })).JsonAsync();
        var rows = all.GetProperty("predictions").EnumerateArray().ToList();
        for (var r = 0; r < rows.Count; r++)
        {
            PredictRankingTests.AssertMatchesReference(reference, rows[r].GetProperty("heads"), r);
        }
    }

    [Fact]
    public async Task StoppedUnderLoadEveryRequestIsAnsweredWithinASecondAndServiceResumesSoonAfterRestart() =>
        await OutageUnderLoadAsync("stopped", server.StopAsync, server.StartAsync);

    [Fact]
    public async Task FrozenUnderLoadEveryRequestIsAnsweredWithinASecondAndServiceResumesSoonAfterThawing() =>
        await OutageUnderLoadAsync("frozen", server.FreezeAsync, server.ThawAsync);

    [Fact]
    public async Task AnEmptyRedisMakesRankingUnreadyNamingTheMissingKeysWritesNothingAndAnImportMakesItReady()
    {
        await server.StartAsync();
        var prefix = RedisServer.UniquePrefix();
        var keysBefore = await server.KeyCountAsync();
        await using var app = RedisApp(prefix);
        using var client = app.CreateClient();

        var report = await (await client.GetAsync("/readyz")).JsonAsync();
        var check = report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "feature-store");
        var description = check.GetProperty("description").GetString()!;
        Assert.Equal("degraded", report.GetProperty("status").GetString());
        Assert.Contains($"ranking: the redis feature store has no table 'users' (no hash at keys '{prefix}users:*')", description, StringComparison.Ordinal);
        Assert.Contains($"no table 'items' (no hash at keys '{prefix}items:*')", description, StringComparison.Ordinal);
        var models = report.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!, m => m.GetProperty("ready").GetBoolean());
        Assert.False(models["ranking"]);
        Assert.False(models["ranking-mtl"]);
        Assert.True(models["shapes"]);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/v2/models/ranking/ready")).StatusCode);
        var refused = await client.PostJsonAsync(Predict, new { user_id = "u0001", item_id = "i0001" });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.True(refused.Headers.Contains("Retry-After"));
        Assert.Equal(keysBefore, await server.KeyCountAsync());

        await ImportAsync(prefix);

        var ready = await EventuallyAsync(async () => (await client.GetAsync("/v2/models/ranking/ready")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(10));
        Assert.True(ready, "ranking did not become ready after the import.");
        Assert.Equal("ready", (await (await client.GetAsync("/readyz")).JsonAsync()).GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync(Predict, new { user_id = "u0001", item_id = "i0001" })).StatusCode);
    }

    /// <summary>
    /// Four clients post rankings without pause; after a second of service Redis goes away for two seconds. Every
    /// answer must come within a second, as 200 or as 503 with Retry-After, and a 200 must come again within five
    /// seconds of Redis being back.
    /// </summary>
    private async Task OutageUnderLoadAsync(string outage, Func<Task> fail, Func<Task> recover)
    {
        await server.StartAsync();
        var keys = await ImportAsync();
        await using var app = RedisApp(keys, breakSeconds: 2);
        using var client = app.CreateClient();
        client.Timeout = TimeSpan.FromSeconds(10);
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync(Predict, new { instances = Instances(4, seed: 1) })).StatusCode);

        var answers = new ConcurrentQueue<(TimeSpan At, TimeSpan Took, HttpStatusCode Status, bool RetryAfter)>();
        var clock = Stopwatch.StartNew();
        var recovered = TimeSpan.MaxValue;
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, 4).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var started = clock.Elapsed;
                using var response = await client.PostJsonAsync(Predict, new { instances = Instances(4, seed: worker * 1000 + i) });
                answers.Enqueue((started, clock.Elapsed - started, response.StatusCode, response.Headers.RetryAfter is not null));
            }
        })).ToList();

        JsonElement during;
        try
        {
            await Task.Delay(1000);
            await fail();
            var down = Stopwatch.StartNew();
            // Readiness reuses a check for a second; a frozen server's ping takes its whole second to fail.
            await Task.Delay(1100);
            during = await (await client.GetAsync("/readyz")).JsonAsync();
            await Task.Delay(TimeSpan.FromSeconds(2.5) - down.Elapsed is { Ticks: > 0 } rest ? rest : TimeSpan.Zero);
        }
        finally
        {
            await recover();
        }

        var back = clock.Elapsed;
        var deadline = back + TimeSpan.FromSeconds(8);
        while (clock.Elapsed < deadline && recovered == TimeSpan.MaxValue)
        {
            await Task.Delay(50);
            recovered = answers.Where(a => a.At >= back && a.Status == HttpStatusCode.OK).Select(a => a.At + a.Took - back).DefaultIfEmpty(TimeSpan.MaxValue).Min();
        }

        await Task.Delay(500);
        await stop.CancelAsync();
        await Task.WhenAll(load);

        var failed = answers.Where(a => a.Status != HttpStatusCode.OK).ToList();
        var slowest = answers.Max(a => a.Took);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Redis {outage}: {answers.Count} answers, {failed.Count} of them 503 (median {Median(failed):F0} ms); slowest {slowest.TotalMilliseconds:F0} ms; first success {recovered.TotalSeconds:F2} s after Redis was back"));
        Assert.Equal("degraded", during.GetProperty("status").GetString());
        Assert.False(during.GetProperty("featureStore").GetProperty("reachable").GetBoolean());
        Assert.NotEmpty(failed);
        Assert.All(failed, a => Assert.True(a.Status == HttpStatusCode.ServiceUnavailable && a.RetryAfter, $"{a.Status} at {a.At}, Retry-After {a.RetryAfter}"));
        Assert.True(slowest < TimeSpan.FromSeconds(1), $"The slowest of {answers.Count} answers took {slowest.TotalMilliseconds:F0} ms.");
        Assert.True(recovered <= TimeSpan.FromSeconds(5), $"Success resumed {recovered.TotalSeconds:F2} s after Redis was back.");
    }

    private static double Median(List<(TimeSpan At, TimeSpan Took, HttpStatusCode Status, bool RetryAfter)> answers) =>
        answers.Count == 0 ? double.NaN : answers.Select(a => a.Took.TotalMilliseconds).Order().ElementAt(answers.Count / 2);

    /// <summary>Loads the demo tables under a fresh key prefix (or <paramref name="prefix"/>) as <c>mhs features import models</c> does.</summary>
    private async Task<string> ImportAsync(string? prefix = null)
    {
        prefix ??= RedisServer.UniquePrefix();
        await using var writer = new RedisFeatureStore(server.Configuration, new RedisKeyLayout { Template = prefix + "{table}:{key}" });
        var results = await FeatureImport.ImportAsync(writer, [RepositoryPaths.Models], new FeatureImportOptions());
        Assert.Equal(["items", "users"], results.Select(r => r.Table));
        return prefix;
    }

    private ServeFactory RedisApp(string prefix, string? configuration = null, double breakSeconds = 5, int timeoutMilliseconds = 200) => new(new Dictionary<string, string?>
    {
        ["FeatureStore:TimeoutMilliseconds"] = timeoutMilliseconds.ToString(CultureInfo.InvariantCulture),
        ["FeatureStore:RedisConfiguration"] = configuration ?? server.Configuration,
        ["FeatureStore:RedisKeys:Template"] = prefix + "{table}:{key}",
        ["FeatureStore:CircuitBreaker:BreakDurationSeconds"] = breakSeconds.ToString(CultureInfo.InvariantCulture),
    });

    /// <summary>Ranking instances over the demo's users (u0001–u2000) and items (i0001–i0500): repeats included, as a ranking request has them.</summary>
    private static List<Dictionary<string, string>> Instances(int count, int seed)
    {
        var random = new Random(seed);
        var user = $"u{random.Next(1, 2001):D4}";
        return [.. Enumerable.Range(0, count).Select(i => new Dictionary<string, string>
        {
            ["user_id"] = i % 4 == 3 ? $"u{random.Next(1, 2001):D4}" : user,
            ["item_id"] = $"i{random.Next(1, 501):D4}",
        })];
    }

    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(200);
        }

        return false;
    }
}

/// <summary>
/// The outage tests time every answer of a service that runs in this test host, so they run alone, not beside another
/// class loading the host's thread pool: started beside different classes, one answer of 6,952 took 1.19 s. As its
/// own process instead, the service met its first outage with its failure path never run before (in a debug build,
/// under the suite's load), and the slowest answer took over a second in four suite runs of four.
/// </summary>
[CollectionDefinition(nameof(RedisOutages), DisableParallelization = true)]
public sealed class RedisOutages;

