using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using MultiHeadServe.Tests.Infrastructure;
using Xunit.Abstractions;

namespace MultiHeadServe.Tests.Repository;

/// <summary>New versions and forced reloads while clients keep predicting: nobody notices but the version number.</summary>
public sealed class RolloutTests(ITestOutputHelper output)
{
    private const int Clients = 16;
    private const int Rollouts = 10;

    [Fact]
    public async Task SixteenClientsSeeNoFailureWhileTenVersionsRollOutAndTenReloadsAreForced()
    {
        using var repository = new TempRepository()
            .With("shapes")
            .With("ranking", manifest => manifest["versionPolicy"] = new JsonObject { ["latest"] = new JsonObject { ["numVersions"] = 2 } });
        await using var service = new ReloadingService(repository);
        var image = ReferenceData.Load("shapes").Images[0];
        var ranking = ReferenceData.Load("ranking");
        var row = ranking.InputRow("features", 0);
        Assert.Equal([1], service.Served("shapes"));

        var failures = new ConcurrentQueue<string>();
        var answered = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, Clients).Select(c => Task.Run(async () =>
        {
            using var client = service.NewClient();
            while (!stop.IsCancellationRequested)
            {
                // Shapes and ranking on /v1, ranking also on /v2: the routes that resolve a version.
                var (model, url, body) = (c % 3) switch
                {
                    0 => ("shapes", "/v1/models/shapes/predict", (object)new { image }),
                    1 => ("ranking", "/v1/models/ranking/predict", new { user_id = "u0042", item_id = "i0007" }),
                    _ => ("ranking", "/v2/models/ranking/infer", new { inputs = new[] { new { name = "features", shape = new[] { 1, row.Length }, datatype = "FP32", data = row } } }),
                };
                // The default version served just before the request was sent and just after its answer: the one that
                // answered must be between them (versions only move up here), i.e. served at some moment in between.
                var before = service.Served(model)[^1];
                using var response = await client.PostJsonAsync(url, body);
                var after = service.Served(model)[^1];
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    failures.Enqueue($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                    continue;
                }

                var json = await response.JsonAsync();
                var version = json.TryGetProperty("model_version", out var v2) ? int.Parse(v2.GetString()!, System.Globalization.CultureInfo.InvariantCulture) : json.GetProperty("version").GetInt32();
                if (version < before || version > after)
                {
                    failures.Enqueue($"{url}: answered by version {version}, while the served default went from {before} to {after}");
                }

                answered.AddOrUpdate($"{model} v{version}", 1, (_, n) => n + 1);
            }
        })).ToList();

        var started = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < Rollouts; i++)
        {
            await Task.Delay(50);
            var version = i + 2;
            service.CopyVersion("shapes", 1, version);
            service.CopyVersion("ranking", 1, version);
            await service.PollAsync();
            Assert.Equal([version], service.Served("shapes"));
            Assert.Equal([version - 1, version], service.Served("ranking"));

            await Task.Delay(50);
            var forced = i % 2 == 0 ? "shapes" : "ranking";
            using var reload = await service.Client.PostAsync($"/v2/repository/models/{forced}/load", null);
            Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
        }

        await Task.Delay(100);
        await stop.CancelAsync();
        await Task.WhenAll(clients);

        output.WriteLine($"{answered.Values.Sum()} requests from {Clients} clients in {started.Elapsed.TotalSeconds:0.0} s, " +
            $"{failures.Count} failed; answered by: {string.Join(", ", answered.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key}: {a.Value}"))}");
        Assert.True(failures.IsEmpty, string.Join("\n", failures));
        // Every rolled-out version of both models answered someone, and the load was real.
        Assert.True(answered.Values.Sum() > 500, $"Only {answered.Values.Sum()} requests: {string.Join(", ", answered)}");
        Assert.True(answered.Keys.Count(k => k.StartsWith("shapes", StringComparison.Ordinal)) >= Rollouts / 2, string.Join(", ", answered.Keys));
        // Shapes: each new version once, and its version again on each of its 5 forced reloads; ranking serves two
        // versions, so each of its forced reloads loads two.
        Assert.Equal(Rollouts + (Rollouts / 2), service.Loads("shapes", "loaded"));
        Assert.Equal(Rollouts + (2 * Rollouts / 2), service.Loads("ranking", "loaded"));
        Assert.Equal(0, service.Loads("shapes", "failed") + service.Loads("ranking", "failed"));
        // Replaced versions were disposed with their batchers once their last request was done: only the served remain.
        await ReloadingService.WaitUntilAsync(() => service.Inference.Batchers <= 3, "replaced versions' batchers to stop");
    }
}
