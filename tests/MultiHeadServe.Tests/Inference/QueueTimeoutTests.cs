using System.Net;
using System.Text.Json.Nodes;
using MultiHeadServe.Observability;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Inference;

/// <summary>
/// The batcher's queue timeout behind a long run. Alone, not beside the other tests: it tells a timeout that fired
/// during the long run from one that fired after it by counting runs, and on a machine the other tests keep busy the
/// timer's callback and the test's own continuation can be held back for the whole of that run (it failed so once).
/// </summary>
[Collection(nameof(Engine.SerialEngineTests))]
public sealed class QueueTimeoutTests
{
    /// <summary>
    /// A request queued behind a long run leaves the queue at its timeout, not when the run ends: the workers only look
    /// at the queue when an instance frees, so behind a run of seconds (hundreds of images) it waited for all of it.
    /// </summary>
    [Fact]
    public async Task ARequestQueuedBehindALongRunLeavesAtItsTimeoutNotWhenTheRunEnds()
    {
        const int Rows = 100_000;
        using var repository = new TempRepository().With("ranking", manifest => manifest["batching"] = new JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 2, ["maxQueueDelayMicroseconds"] = 0, ["instances"] = 1, ["queueTimeoutMicroseconds"] = 10_000,
        });
        var settings = repository.Settings();
        settings["Serve:MaxInstances"] = Rows.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var app = new ServeFactory(settings);
        using var client = app.CreateClient();
        var metrics = app.Service<ServeMetrics>();
        var columns = ReferenceData.Load("ranking").Manifest.GetProperty("features").GetProperty("columns").GetArrayLength();
        var row = new { features = Enumerable.Repeat(0.5f, columns).ToArray() };
        // Warm first: the warm-up's own runs must not count as the long run's.
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/v1/models/ranking/predict?heads=revenue", row)).StatusCode);
        var body = new { instances = Enumerable.Repeat(row, Rows) };

        // 100,000 rows in 50,000 runs of two on the one instance: far longer than the 10 ms a queued request may wait.
        // Under a busy machine the second request may arrive only after the last of those runs (it then runs at once,
        // which shows nothing): that attempt is made again.
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var runsBefore = metrics.SessionRuns;
            var longRun = client.PostJsonAsync("/v1/models/ranking/predict?heads=revenue", body);
            await BatchingTests.WaitUntilAsync(() => metrics.SessionRuns > runsBefore);
            var queued = await client.PostJsonAsync("/v1/models/ranking/predict?heads=revenue", row);
            var runsWhenAnswered = metrics.SessionRuns - runsBefore;
            Assert.Equal(HttpStatusCode.OK, (await longRun).StatusCode);
            if (queued.StatusCode == HttpStatusCode.OK)
            {
                continue;
            }

            var refusal = await queued.JsonAsync();
            Assert.True(queued.StatusCode == HttpStatusCode.TooManyRequests, refusal.GetRawText());
            Assert.Contains("queue timeout", refusal.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.True(runsWhenAnswered < Rows / 2, $"The queued request was answered only after the long request's {runsWhenAnswered} runs.");
            return;
        }

        Assert.Fail("In five attempts the second request never arrived while the long request was running.");
    }
}
