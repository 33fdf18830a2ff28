using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Npgsql;
using MultiHeadServe.Features.Store;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// The service on a real PostgreSQL feature store (a server of this class's own, started from the installed
/// binaries): the tables are loaded first as <c>mhs features import</c> loads them, predictions match the reference,
/// and when the server goes away mid-test the API answers 503 with Retry-After within the timeout budget,
/// then recovers once the server is back.
/// </summary>
[TakesAbout(seconds: 4)]
public sealed class PostgresFeatureStoreServiceTests(PostgresServer server) : IClassFixture<PostgresServer>
{
    private static async Task<bool> Delay()
    {
        await Task.Delay(100);
        return true;
    }

    [Fact]
    public async Task PredictionsFromPostgresMatchTheReferenceAndSurviveAnOutage()
    {
        var reference = ReferenceData.Load("ranking");
        var database = await server.CreateDatabaseAsync();
        await using (var writer = new PostgresFeatureStore(database))
        {
            await FeatureImport.ImportAsync(writer, [RepositoryPaths.Models], new FeatureImportOptions());
        }

        await using var app = new ServeFactory(new Dictionary<string, string?>
        {
            ["FeatureStore:PostgresConnectionString"] = database,
            ["FeatureStore:TimeoutMilliseconds"] = "200",
            ["FeatureStore:CircuitBreaker:BreakDurationSeconds"] = "1",
            ["FeatureStore:CircuitBreaker:MinimumThroughput"] = "2",
        });
        using var client = app.CreateClient();

        var ready = await (await client.GetAsync("/readyz")).JsonAsync();
        Assert.Equal("postgres", ready.GetProperty("featureStore").GetProperty("kind").GetString());
        var before = await (await client.PostJsonAsync("/v1/models/ranking/predict", new { instances = reference.Entities.Take(8).ToList() })).JsonAsync();
        var rows = before.GetProperty("predictions").EnumerateArray().ToList();
        for (var r = 0; r < rows.Count; r++)
        {
            PredictRankingTests.AssertMatchesReference(reference, rows[r].GetProperty("heads"), r);
        }

        await server.StopAsync();
        try
        {
            for (var attempt = 0; attempt < 4; attempt++)
            {
                var stopwatch = Stopwatch.StartNew();
                var response = await client.PostJsonAsync("/v1/models/ranking/predict", reference.Entities[attempt]);
                stopwatch.Stop();

                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.True(int.Parse(response.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture) >= 1);
                // The store's budget is 200 ms; generous slack for a loaded CI machine, but far below a hung request.
                Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2), $"The 503 took {stopwatch.Elapsed}.");
            }

            // Only the models that read the store are out: the pod stays ready for image models, which keep serving.
            // (Readiness reuses a store ping for a second, so the first probe may still see the store answering.)
            HttpResponseMessage readiness;
            JsonElement report;
            var readinessDeadline = DateTime.UtcNow.AddSeconds(5);
            do
            {
                readiness = await client.GetAsync("/readyz");
                report = await readiness.JsonAsync();
            }
            while (report.GetProperty("status").GetString() != "degraded" && DateTime.UtcNow < readinessDeadline && await Delay());

            Assert.Equal(HttpStatusCode.OK, readiness.StatusCode);
            Assert.Equal("degraded", report.GetProperty("status").GetString());
            Assert.False(report.GetProperty("featureStore").GetProperty("reachable").GetBoolean());
            Assert.Equal("Degraded", report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "feature-store").GetProperty("status").GetString());
            var models = report.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!, m => m.GetProperty("ready").GetBoolean());
            Assert.False(models["ranking"]);
            Assert.True(models["shapes"]);
            Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/v2/models/ranking/ready")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/models/shapes/ready")).StatusCode);
            var shapes = await client.PostJsonAsync("/v1/models/shapes/predict", new { image = ReferenceData.Load("shapes").Images[0] });
            Assert.Equal(HttpStatusCode.OK, shapes.StatusCode);
        }
        finally
        {
            await server.StartAsync();
        }

        var deadline = DateTime.UtcNow.AddSeconds(20);
        HttpResponseMessage recovered;
        do
        {
            await Task.Delay(250);
            recovered = await client.PostJsonAsync("/v1/models/ranking/predict", reference.Entities[5]);
        }
        while (recovered.StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline);

        Assert.Equal(HttpStatusCode.OK, recovered.StatusCode);
        PredictRankingTests.AssertMatchesReference(reference, (await recovered.JsonAsync()).GetProperty("heads"), 5);
    }

    [Fact]
    public async Task AnEmptyDatabaseMakesRankingUnreadyNamingWhatIsMissingCreatesNothingAndAnImportMakesItReady()
    {
        await server.StartAsync();
        var database = await server.CreateDatabaseAsync();
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["FeatureStore:PostgresConnectionString"] = database });
        using var client = app.CreateClient();

        var report = await (await client.GetAsync("/readyz")).JsonAsync();
        var description = StoreCheck(report);
        Assert.Equal("degraded", report.GetProperty("status").GetString());
        Assert.Contains("ranking: the postgres feature store has no table 'users'; load it with 'mhs features import'.", description, StringComparison.Ordinal);
        Assert.Contains("ranking: the postgres feature store has no table 'items'", description, StringComparison.Ordinal);
        Assert.Contains("ranking-mtl: the postgres feature store has no table 'users'", description, StringComparison.Ordinal);
        Assert.False(ModelReady(report, "ranking"));
        Assert.True(ModelReady(report, "shapes"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.PostJsonAsync("/v1/models/ranking/predict", new { user_id = "u0001", item_id = "i0001" })).StatusCode);
        Assert.Equal(0L, await ScalarAsync(database, "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"));

        // A table someone else made, lacking columns: named too.
        await ScalarAsync(database, "CREATE TABLE users (user_id text PRIMARY KEY, user_age real); SELECT 0");
        var partial = await EventuallyAsync(client, r => StoreCheck(r).Contains("table 'users' in the postgres feature store has no column(s) user_tenure_days,", StringComparison.Ordinal));
        Assert.True(partial, StoreCheck(await (await client.GetAsync("/readyz")).JsonAsync()));

        await using (var writer = new PostgresFeatureStore(database))
        {
            await FeatureImport.ImportAsync(writer, [RepositoryPaths.Models], new FeatureImportOptions { Replace = true });
        }

        Assert.True(await EventuallyAsync(client, r => r.GetProperty("status").GetString() == "ready"), "Not ready after the import.");
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2/models/ranking/ready")).StatusCode);
        // The first lookups open the store's connections within the 200 ms budget; on a busy machine one may not, and
        // is told to retry (503 + Retry-After), as any client is. Predictions follow within seconds.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        HttpResponseMessage predicted;
        while ((predicted = await client.PostJsonAsync("/v1/models/ranking/predict", new { user_id = "u0001", item_id = "i0001" })).StatusCode != HttpStatusCode.OK &&
            DateTime.UtcNow < deadline)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, predicted.StatusCode);
            Assert.NotNull(predicted.Headers.RetryAfter);
            await Task.Delay(200);
        }

        Assert.Equal(HttpStatusCode.OK, predicted.StatusCode);
    }

    private static string StoreCheck(JsonElement report) =>
        report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "feature-store").GetProperty("description").GetString() ?? "";

    private static bool ModelReady(JsonElement report, string model) =>
        report.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("name").GetString() == model).GetProperty("ready").GetBoolean();

    private static async Task<bool> EventuallyAsync(HttpClient client, Func<JsonElement, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (condition(await (await client.GetAsync("/readyz")).JsonAsync()))
            {
                return true;
            }

            await Task.Delay(250);
        }

        return false;
    }

    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
