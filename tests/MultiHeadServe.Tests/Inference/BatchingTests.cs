using System.Net;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using MultiHeadServe.Inference;
using MultiHeadServe.Observability;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Inference;

/// <summary>The dynamic batcher: stacked runs, each request gets exactly its own rows back.</summary>
[TakesAbout(seconds: 7)]
public sealed class BatchingTests
{
    [Theory]
    [InlineData(2_000)] // a queue delay makes the requests stack up whatever the machine's speed
    [InlineData(0)] // the demo setting: requests run alone when an instance is idle and stack only while both are busy
    public async Task AThousandConcurrentDistinctRequestsEachGetTheirOwnRows(int maxQueueDelayMicroseconds)
    {
        const int Requests = 1000;
        var columns = ReferenceData.Load("ranking").Manifest.GetProperty("features").GetProperty("columns").GetArrayLength();
        var random = new Random(42);
        var inputs = Enumerable.Range(0, Requests).Select(_ => Enumerable.Range(0, columns).Select(_ => (float)(random.NextDouble() * 2)).ToArray()).ToArray();
        var expected = ExpectedRevenue(inputs, columns);

        using var repository = new TempRepository().With("ranking", manifest => manifest["batching"] = new JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 64, ["maxQueueDelayMicroseconds"] = maxQueueDelayMicroseconds, ["maxQueueSize"] = 2048, ["instances"] = 2,
        });
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();
        var metrics = app.Service<ServeMetrics>();
        var runsBefore = metrics.SessionRuns;

        var responses = await Task.WhenAll(inputs.Select(async values =>
            await (await client.PostJsonAsync("/v1/models/ranking/predict?heads=revenue", new { features = values })).JsonAsync()));

        AssertRevenues(expected, responses, "request");

        // With no delay a fast machine may run every request alone; with one, the requests must have stacked.
        if (maxQueueDelayMicroseconds > 0)
        {
            var runs = metrics.SessionRuns - runsBefore;
            Assert.True(runs < Requests, $"{Requests} concurrent requests took {runs} runs: nothing was batched.");
            Assert.Contains(responses, r => r.GetProperty("timings").GetProperty("batchRows").GetInt32() > 1);
        }
    }

    /// <summary>
    /// A request of more rows than maxBatchSize runs in runs of at most that many rows (the runtime keeps the memory of
    /// its largest run), and every row's answer is what the model gives that row alone.
    /// </summary>
    [Fact]
    public async Task ARequestLargerThanMaxBatchSizeRunsInSlicesAndEveryRowGetsItsOwnAnswer()
    {
        const int Rows = 30;
        var columns = ReferenceData.Load("ranking").Manifest.GetProperty("features").GetProperty("columns").GetArrayLength();
        var random = new Random(7);
        var inputs = Enumerable.Range(0, Rows).Select(_ => Enumerable.Range(0, columns).Select(_ => (float)(random.NextDouble() * 2)).ToArray()).ToArray();
        var expected = ExpectedRevenue(inputs, columns);
        using var repository = new TempRepository().With("ranking", manifest => manifest["batching"] = new JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 8, ["maxQueueDelayMicroseconds"] = 0, ["instances"] = 1,
        });
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();
        var metrics = app.Service<ServeMetrics>();
        var runsBefore = metrics.SessionRuns;

        var response = await client.PostJsonAsync("/v1/models/ranking/predict?heads=revenue", new { instances = inputs.Select(values => new { features = values }) });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(4, metrics.SessionRuns - runsBefore); // 8 + 8 + 8 + 6 rows
        var predictions = (await response.JsonAsync()).GetProperty("predictions").EnumerateArray().ToList();
        AssertRevenues(expected, predictions, "row");
    }

    [Fact]
    public async Task AFullQueueAnswersAtOnceWith429AndRetryAfter()
    {
        using var repository = new TempRepository().With("shapes", manifest => manifest["batching"] = new JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 2, ["maxQueueDelayMicroseconds"] = 200_000, ["maxQueueSize"] = 1, ["instances"] = 1,
        });
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();
        var image = ReferenceData.Load("shapes").Images[0];

        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => client.PostJsonAsync("/v1/models/shapes/predict", new { image })));

        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(refused);
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(refused, r => Assert.Equal("1", r.Headers.GetValues("Retry-After").Single()));
        Assert.All(responses, r => Assert.True(r.StatusCode is HttpStatusCode.OK or HttpStatusCode.TooManyRequests));
    }

    [Fact]
    public async Task ARequestCancelledWhileQueuedLeavesTheQueueAndCostsNoRun()
    {
        using var repository = new TempRepository().With("shapes", manifest => manifest["batching"] = new JsonObject
        {
            // No queue timeout: the request leaves the queue because it was cancelled, not because it expired.
            ["enabled"] = true, ["maxBatchSize"] = 8, ["maxQueueDelayMicroseconds"] = 2_000_000, ["maxQueueSize"] = 16, ["instances"] = 1, ["queueTimeoutMicroseconds"] = 0,
        });
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();
        var inference = app.Service<InferenceService>();
        var metrics = app.Service<ServeMetrics>();
        var image = ReferenceData.Load("shapes").Images[0];
        var runs = metrics.SessionRuns;
        using var cts = new CancellationTokenSource();

        var call = client.PostAsync("/v1/models/shapes/predict", System.Net.Http.Json.JsonContent.Create(new { image }), cts.Token);
        await WaitUntilAsync(() => inference.QueueLength("shapes") == 1);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await WaitUntilAsync(() => inference.QueueLength("shapes") == 0);
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.Equal(runs, metrics.SessionRuns);
    }

    [Fact]
    public async Task BatchingCanBeTurnedOffPerModel()
    {
        using var repository = new TempRepository().With("shapes", manifest => manifest["batching"] = new JsonObject { ["enabled"] = false });
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();
        var image = ReferenceData.Load("shapes").Images[1];

        var responses = await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
            await (await client.PostJsonAsync("/v1/models/shapes/predict", new { image })).JsonAsync()));

        Assert.All(responses, r => Assert.Equal(1, r.GetProperty("timings").GetProperty("batchRows").GetInt32()));
    }

    [Fact]
    public async Task WithoutADelayALoneRequestRunsAtOnceOnItsOwnThread()
    {
        // Nothing to batch with and no delay to wait out: the request runs alone, now, without the two thread
        // switches of a hand-off to the worker, whose thread therefore does no work at all.
        const int Requests = 50;
        using var repository = new TempRepository().With("shapes", manifest => manifest["batching"] = new JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 8, ["maxQueueDelayMicroseconds"] = 0, ["maxQueueSize"] = 16, ["instances"] = 1,
        }, asName: "solo");
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();
        var metrics = app.Service<ServeMetrics>();
        var image = ReferenceData.Load("shapes").Images[4];
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/v1/models/solo/predict", new { image })).StatusCode);
        var worker = ThreadCpu.Find("batcher-solo-0");
        var before = worker.Elapsed;
        var runsBefore = metrics.SessionRuns;

        for (var i = 0; i < Requests; i++)
        {
            var body = await (await client.PostJsonAsync("/v1/models/solo/predict", new { image })).JsonAsync();
            Assert.Equal(1, body.GetProperty("timings").GetProperty("batchRows").GetInt32());
        }

        Assert.Equal(Requests, metrics.SessionRuns - runsBefore);
        var workerCpu = worker.Elapsed - before;
        Assert.True(workerCpu < TimeSpan.FromMilliseconds(1), $"the worker thread used {workerCpu.TotalMilliseconds:0.00} ms of CPU: the runs were handed to it");
    }

    [Fact]
    public async Task ABatchWaitingForItsDelaySleepsInsteadOfSpinning()
    {
        // Every request waits out the 5 ms delay alone. The batcher's thread should sleep through the waits:
        // its CPU time is the runs of a model that costs microseconds plus its wake-ups (about 0.4 ms per
        // request measured), not a busy loop before each deadline (which cost about 1 ms more per wait).
        const int Requests = 40;
        using var repository = new TempRepository().With("ranking", manifest => manifest["batching"] = new JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 8, ["maxQueueDelayMicroseconds"] = 5_000, ["maxQueueSize"] = 16, ["instances"] = 1,
        }, asName: "idle");
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();
        var features = ReferenceData.Load("ranking").InputRow("features", 2);
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/v1/models/idle/predict", new { features })).StatusCode);
        var worker = ThreadCpu.Find("batcher-idle-0");
        var before = worker.Elapsed;
        var started = DateTime.UtcNow;

        for (var i = 0; i < Requests; i++)
        {
            var response = await client.PostJsonAsync("/v1/models/idle/predict", new { features });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var waited = DateTime.UtcNow - started;
        var cpu = worker.Elapsed - before;
        Assert.True(waited >= TimeSpan.FromMilliseconds(Requests * 5), $"the requests took {waited.TotalMilliseconds:0} ms: they did not wait the delay");
        Assert.True(cpu < TimeSpan.FromMilliseconds(30),
            $"the batcher thread used {cpu.TotalMilliseconds:0.0} ms of CPU over {Requests} waits of 5 ms ({waited.TotalMilliseconds:0} ms in all)");
    }

    [Fact]
    public async Task NoAdmittedRequestWaitsLongerThanTheQueueTimeoutAndTheRestAreRefusedWithRetryAfter()
    {
        const int TimeoutMicroseconds = 2_000;
        using var repository = new TempRepository().With("shapes", manifest => manifest["batching"] = new JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 32, ["maxQueueDelayMicroseconds"] = 0, ["maxQueueSize"] = 1024, ["instances"] = 1,
            ["queueTimeoutMicroseconds"] = TimeoutMicroseconds,
        }, asName: "hurried");
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();
        var images = ReferenceData.Load("shapes").Images;

        // Each request is a run of 32 rows, several milliseconds on one instance: one queued behind another would
        // wait longer than the 2 ms the model allows.
        var body = new { instances = images.Select(image => new { image }).ToList() };
        var responses = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => client.PostJsonAsync("/v1/models/hurried/predict", body)));

        var served = responses.Where(r => r.StatusCode == HttpStatusCode.OK).ToList();
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.Equal(responses.Length, served.Count + refused.Count);
        Assert.NotEmpty(served);
        Assert.NotEmpty(refused);
        Assert.All(refused, r => Assert.Equal("1", r.Headers.GetValues("Retry-After").Single()));
        foreach (var response in served)
        {
            var queueMs = (await response.JsonAsync()).GetProperty("timings").GetProperty("queueMs").GetDouble();
            // The limit, plus the instant between the expiry check and the dispatch.
            Assert.True(queueMs <= (TimeoutMicroseconds / 1000.0) + 1, $"A request waited {queueMs} ms in the queue.");
        }
    }

    internal static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "The condition did not hold within 10 s.");
            await Task.Delay(5);
        }
    }

    /// <summary>Each answer's revenue head is the independent session's output, scaled as the manifest says.</summary>
    private static void AssertRevenues(float[] expected, IReadOnlyList<System.Text.Json.JsonElement> answers, string what)
    {
        var scale = ReferenceData.Load("ranking").HeadNumber("revenue", "scale", 1);
        var offset = ReferenceData.Load("ranking").HeadNumber("revenue", "offset", 0);
        Assert.Equal(expected.Length, answers.Count);
        for (var i = 0; i < expected.Length; i++)
        {
            var value = answers[i].GetProperty("heads").GetProperty("revenue").GetProperty("value").GetDouble();
            var want = (expected[i] * scale) + offset;
            Assert.True(Math.Abs(value - want) <= 1e-4 * Math.Max(1, Math.Abs(want)), $"{what} {i}: {value}, expected {want}");
        }
    }

    /// <summary>
    /// Each input run alone through the fused members' revenue file, by ONNX Runtime's own API rather than the
    /// service's: the answer a batch must not change.
    /// </summary>
    private static float[] ExpectedRevenue(float[][] inputs, int columns)
    {
        var path = Path.Combine(RepositoryPaths.Model("ranking"), "1", "revenue.onnx");
        using var session = new InferenceSession(path);
        using var runOptions = new RunOptions();
        return inputs.Select(values =>
        {
            using var input = OrtValue.CreateTensorValueFromMemory(values, [1, columns]);
            using var result = session.Run(runOptions, ["features"], [input], ["revenue"]);
            return result[0].GetTensorDataAsSpan<float>()[0];
        }).ToArray();
    }
}
