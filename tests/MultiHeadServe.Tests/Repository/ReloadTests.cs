using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Repository;

/// <summary>What a poll or a load picks up, and what a bad version, a bad manifest or an unload does to clients.</summary>
public sealed class ReloadTests
{
    private static readonly string Image = ReferenceData.Load("shapes").Images[0];

    [Fact]
    public async Task ACorruptNewVersionChangesNothingButTheIndexAndTheMetric()
    {
        using var repository = new TempRepository().With("shapes").With("ranking");
        await using var service = new ReloadingService(repository);
        var original = File.ReadAllBytes(Path.Combine(service.VersionPath("shapes", 1), "model.onnx"));
        await using var load = ShapesLoad.Start(service, clients: 4);
        await load.WaitForAnswersAsync(4);

        service.AddVersion("shapes", 2, new Dictionary<string, byte[]> { ["model.onnx"] = original[..(original.Length / 3)] });
        await service.PollAsync();
        var index = await IndexAsync(service.Client);
        await service.PollAsync(); // unchanged since: neither tried nor counted again
        using var forced = await service.Client.PostAsync("/v2/repository/models/shapes/load", null);
        var forcedError = (await forced.JsonAsync()).GetProperty("error").GetString();
        var summary = (await (await service.Client.GetAsync("/v1/models/shapes")).JsonAsync()).GetProperty("model");
        var answered = await load.StopAsync();

        Assert.Empty(load.Failures);
        Assert.True(answered.Count > 20, $"only {answered.Count} requests");
        Assert.All(answered, version => Assert.Equal(1, version));
        Assert.Equal([1], service.Served("shapes"));
        Assert.Equal(("READY", null), State(index, "shapes", "1"));
        var (state, reason) = State(index, "shapes", "2");
        Assert.Equal("UNAVAILABLE", state);
        Assert.Contains("ONNX Runtime cannot load the model", reason, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, forced.StatusCode);
        Assert.Contains("version 2", forcedError, StringComparison.Ordinal);
        Assert.Equal(2, service.Loads("shapes", "failed")); // the poll's and the forced load's
        Assert.Equal(2, summary.GetProperty("failedVersions")[0].GetProperty("version").GetInt32());
        Assert.Equal([1, 2], summary.GetProperty("versions").EnumerateArray().Select(v => v.GetInt32()));
        Assert.Equal([1], summary.GetProperty("servedVersions").EnumerateArray().Select(v => v.GetInt32()));

        // A good copy of the version replaces the bad one at the next poll.
        Directory.Delete(service.VersionPath("shapes", 2), recursive: true);
        service.CopyVersion("shapes", 1, 2);
        await service.PollAsync();
        Assert.Equal([2], service.Served("shapes"));
        Assert.Equal(("READY", null), State(await IndexAsync(service.Client), "shapes", "2"));
    }

    [Fact]
    public async Task ManifestChangesArePickedUpByTheSameReloadAndABadOneChangesNothing()
    {
        using var repository = new TempRepository().With("shapes", manifest =>
        {
            manifest["heads"]!.AsArray().RemoveAt(1); // no bbox head yet (nor its loss weight)
            manifest.Remove("loss");
            manifest["heads"]![0]!["topK"] = 3;
            manifest["batching"]!["maxBatchSize"] = 32;
        });
        await using var service = new ReloadingService(repository);
        var before = await PredictAsync(service.Client);

        EditManifest(repository, "shapes", manifest =>
        {
            manifest["heads"]!.AsArray().Add(new JsonObject
            {
                ["name"] = "bbox", ["output"] = "bbox", ["kind"] = "bbox", ["boxFormat"] = "xyxy", ["normalized"] = true, ["loss"] = "smooth_l1",
            });
            manifest["heads"]![0]!["topK"] = 2;
            manifest["batching"]!["maxBatchSize"] = 8;
            manifest["batching"]!["preferredBatchSizes"] = new JsonArray(4, 8);
        });
        await service.PollAsync();
        Assert.True(service.Loads("shapes", "failed") == 0, "The good edit was refused: " + await IndexAsync(service.Client));
        var after = await PredictAsync(service.Client);
        var detail = await (await service.Client.GetAsync("/v1/models/shapes")).JsonAsync();

        EditManifest(repository, "shapes", manifest => manifest["heads"]![1]!["output"] = "no_such_output");
        await service.PollAsync();
        var afterBadEdit = await PredictAsync(service.Client);
        var index = await IndexAsync(service.Client);

        Assert.False(before.TryGetProperty("bbox", out _));
        Assert.Equal(3, before.GetProperty("class").GetProperty("top").GetArrayLength());
        Assert.True(after.TryGetProperty("bbox", out _));
        Assert.Equal(2, after.GetProperty("class").GetProperty("top").GetArrayLength());
        Assert.Equal(8, detail.GetProperty("manifest").GetProperty("batching").GetProperty("maxBatchSize").GetInt32());
        Assert.Equal(1, service.Loads("shapes", "loaded"));
        // The bad edit: the last good manifest keeps serving, and the index says why the reload failed.
        Assert.True(afterBadEdit.TryGetProperty("bbox", out _));
        Assert.Equal(2, afterBadEdit.GetProperty("class").GetProperty("top").GetArrayLength());
        Assert.Equal(1, service.Loads("shapes", "failed"));
        var (state, reason) = State(index, "shapes", "1");
        Assert.Equal("READY", state);
        Assert.Contains("no_such_output", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnloadingAnswers404NamingTheModelWhileRunningRequestsFinish()
    {
        using var repository = new TempRepository().With("shapes").With("ranking");
        await using var service = new ReloadingService(repository);
        await using var load = ShapesLoad.Start(service, clients: 4, acceptNotFound: true);
        await load.WaitForAnswersAsync(8);

        using var unload = await service.Client.PostAsync("/v2/repository/models/shapes/unload", null);
        await Task.Delay(200);
        var answered = await load.StopAsync();
        using var v1 = await service.Client.PostJsonAsync("/v1/models/shapes/predict", new { image = Image });
        using var v2 = await service.Client.PostJsonAsync("/v2/models/shapes/infer", new { inputs = Array.Empty<object>() });
        using var ready = await service.Client.GetAsync("/v2/models/shapes/versions/1/ready");
        var index = await IndexAsync(service.Client);
        await service.PollAsync(); // an unloaded model stays unloaded though its folder is there
        var servedAfterPoll = service.Served("shapes");
        using var reload = await service.Client.PostAsync("/v2/repository/models/shapes/load", null);
        using var again = await service.Client.PostJsonAsync("/v1/models/shapes/predict", new { image = Image });

        Assert.Equal(HttpStatusCode.OK, unload.StatusCode);
        Assert.Empty(load.Failures);
        Assert.NotEmpty(answered);
        Assert.Equal(HttpStatusCode.NotFound, v1.StatusCode);
        var problem = await v1.JsonAsync();
        Assert.Equal("model", problem.GetProperty("field").GetString());
        Assert.Contains("'shapes'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, v2.StatusCode);
        Assert.Contains("'shapes'", (await v2.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, ready.StatusCode);
        Assert.Equal(("UNAVAILABLE", "unloaded"), State(index, "shapes", null));
        Assert.Equal(("READY", null), State(index, "ranking", "1"));
        Assert.Empty(servedAfterPoll);
        Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        // The unloaded version's sessions and batcher went once its last request was done.
        await ReloadingService.WaitUntilAsync(() => service.Inference.QueueLength("shapes") == 0 && service.Inference.Batchers <= 2, "the unloaded batcher to stop");
    }

    [Fact]
    public async Task PollingFollowsTheVersionPolicyAndModelsAddedOrRemoved()
    {
        using var repository = new TempRepository().With("shapes", manifest =>
            manifest["versionPolicy"] = new JsonObject { ["specific"] = new JsonObject { ["versions"] = new JsonArray(1, 3) } });
        await using var service = new ReloadingService(repository);

        service.CopyVersion("shapes", 1, 2);
        service.CopyVersion("shapes", 1, 3);
        await service.PollAsync();
        var specific = service.Served("shapes");
        var index = await IndexAsync(service.Client);

        EditManifest(repository, "shapes", manifest => manifest["versionPolicy"] = new JsonObject { ["all"] = new JsonObject() });
        await service.PollAsync();
        var all = service.Served("shapes");
        using var versionTwo = await service.Client.PostJsonAsync("/v1/models/shapes/versions/2/predict", new { image = Image });

        Directory.Delete(service.VersionPath("shapes", 3), recursive: true);
        repository.With("ranking");
        await service.PollAsync();
        var afterRemoval = service.Served("shapes");
        var ranking = service.Served("ranking");

        Directory.Delete(Path.Combine(repository.Path, "ranking"), recursive: true);
        await service.PollAsync();

        Assert.Equal([1, 3], specific);
        Assert.Equal("UNAVAILABLE", State(index, "shapes", "2").State);
        Assert.Contains("version policy", State(index, "shapes", "2").Reason, StringComparison.Ordinal);
        Assert.Equal([1, 2, 3], all);
        Assert.Equal(2, (await versionTwo.JsonAsync()).GetProperty("version").GetInt32());
        Assert.Equal([1, 2], afterRemoval);
        Assert.Equal([1], ranking);
        Assert.Empty(service.Served("ranking"));
    }

    [Fact]
    public async Task TheRepositoryApiExistsOnlyWithApiKeysAndAsksForOne()
    {
        await using (var open = new ServeFactory())
        {
            using var client = open.CreateClient();
            using var index = await client.PostAsync("/v2/repository/index", null);
            Assert.Equal(HttpStatusCode.NotFound, index.StatusCode);
            Assert.Contains("API keys", (await index.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
        }

        using var repository = new TempRepository().With("shapes");
        await using var service = new ReloadingService(repository);
        using var anonymous = service.NewClient();
        anonymous.DefaultRequestHeaders.Authorization = null;
        using var refused = await anonymous.PostAsync("/v2/repository/models/shapes/unload", null);
        using var unknownLoad = await service.Client.PostAsync("/v2/repository/models/nope/load", null);
        using var unknownUnload = await service.Client.PostAsync("/v2/repository/models/nope/unload", null);
        using var escape = await service.Client.PostAsync("/v2/repository/models/..%2Fshapes/load", null);
        using var badBody = await service.Client.PostRawAsync("/v2/repository/index", "{\"ready\": 1}");
        using var notJson = await service.Client.PostRawAsync("/v2/repository/index", "{\"ready\": tru");
        using var config = await service.Client.PostRawAsync("/v2/repository/models/shapes/load", "{\"parameters\": {\"config\": \"{}\"}}");
        using var readyOnly = await service.Client.PostRawAsync("/v2/repository/index", "{\"ready\": true}");

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal([1], service.Served("shapes"));
        Assert.Equal(HttpStatusCode.NotFound, unknownLoad.StatusCode);
        Assert.Contains("'nope'", (await unknownLoad.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, unknownUnload.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, escape.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badBody.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, config.StatusCode);
        Assert.Contains("'config'", (await config.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
        var entry = Assert.Single((await readyOnly.JsonAsync()).EnumerateArray());
        Assert.Equal("shapes", entry.GetProperty("name").GetString());
    }

    private static async Task<JsonElement> PredictAsync(HttpClient client)
    {
        using var response = await client.PostJsonAsync("/v1/models/shapes/predict", new { image = Image });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.JsonAsync()).GetProperty("heads");
    }

    internal static async Task<JsonElement> IndexAsync(HttpClient client)
    {
        using var response = await client.PostAsync("/v2/repository/index", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.JsonAsync();
    }

    internal static (string? State, string? Reason) State(JsonElement index, string model, string? version)
    {
        var entry = index.EnumerateArray().Single(e => e.GetProperty("name").GetString() == model &&
            (e.TryGetProperty("version", out var v) ? v.GetString() : null) == version);
        return (entry.TryGetProperty("state", out var s) ? s.GetString() : null, entry.TryGetProperty("reason", out var r) ? r.GetString() : null);
    }

    private static void EditManifest(TempRepository repository, string model, Action<JsonObject> edit)
    {
        var path = Path.Combine(repository.Path, model, "model.json");
        var manifest = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(manifest);
        File.WriteAllText(path, manifest.ToJsonString());
    }

    /// <summary>Clients predicting with shapes until stopped; every answer not 200 (or 404 naming the model, when allowed) is a failure.</summary>
    private sealed class ShapesLoad : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentQueue<int> _versions = new();
        private List<Task> _clients = [];

        public ConcurrentQueue<string> Failures { get; } = new();

        public static ShapesLoad Start(ReloadingService service, int clients, bool acceptNotFound = false)
        {
            var load = new ShapesLoad();
            load._clients = Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
            {
                using var client = service.NewClient();
                while (!load._stop.IsCancellationRequested)
                {
                    using var response = await client.PostJsonAsync("/v1/models/shapes/predict", new { image = Image });
                    var body = await response.Content.ReadAsStringAsync();
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        load._versions.Enqueue(JsonDocument.Parse(body).RootElement.GetProperty("version").GetInt32());
                    }
                    else if (!(acceptNotFound && response.StatusCode == HttpStatusCode.NotFound && body.Contains("'shapes'", StringComparison.Ordinal)))
                    {
                        load.Failures.Enqueue($"{(int)response.StatusCode}: {body}");
                    }
                }
            })).ToList();
            return load;
        }

        /// <summary>Waits until the clients have had <paramref name="count"/> answers with 200 (a cold, busy test host takes a while).</summary>
        public async Task WaitForAnswersAsync(int count)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (_versions.Count < count)
            {
                Assert.True(DateTime.UtcNow < deadline, $"The clients had {_versions.Count} answers in 30 s. Failures: {string.Join("; ", Failures)}");
                await Task.Delay(20);
            }
        }

        public async Task<IReadOnlyList<int>> StopAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_clients);
            return [.. _versions];
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _stop.Dispose();
        }
    }
}
