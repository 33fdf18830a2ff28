using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using MultiHeadServe.Tests.Infrastructure;
using Xunit.Abstractions;

namespace MultiHeadServe.Tests.Hardening;

/// <summary>
/// The service as its own process under 256 connections posting to <c>shapes</c> without pause: no admitted request
/// waits in the queue longer than the model's queue timeout, the rest are refused quickly with 429/503 and
/// Retry-After, nothing goes unanswered, and resident memory stays bounded.
/// </summary>
/// <remarks>
/// The load lasts <c>MHS_FAULT_LOAD_SECONDS</c> seconds (10 by default). The measured figures are written to the
/// test output.
/// </remarks>
[TakesAbout(seconds: 14)]
public sealed class OverloadTests(ITestOutputHelper output)
{
    private const int Connections = 256;
    /// <summary>The model's queue timeout: 50 ms, or MHS_FAULT_QUEUE_TIMEOUT_US (a tighter one makes refusals happen on a fast machine).</summary>
    private static readonly int QueueTimeoutMicroseconds =
        int.TryParse(Environment.GetEnvironmentVariable("MHS_FAULT_QUEUE_TIMEOUT_US"), out var microseconds) ? microseconds : 50_000;

    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(3);

    private static TimeSpan Duration => TimeSpan.FromSeconds(
        double.TryParse(Environment.GetEnvironmentVariable("MHS_FAULT_LOAD_SECONDS"), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? seconds
            : 10);

    [Fact]
    public async Task UnderTwoHundredFiftySixConnectionsAdmittedRequestsWaitNoLongerThanTheQueueTimeoutAndTheRestAreRefusedQuickly()
    {
        // The demo's shapes with a queue timeout of 50 ms (its own allows a second).
        using var repository = new TempRepository().With("shapes", manifest => manifest["batching"]!.AsObject()["queueTimeoutMicroseconds"] = QueueTimeoutMicroseconds);
        await using var service = await ServiceProcess.StartAsync(ServiceProcess.BuiltService, RepositoryPaths.Root, new Dictionary<string, string>
        {
            ["ModelRepository__Path"] = repository.Path,
            ["Serilog__MinimumLevel__Default"] = "Warning",
            ["Serve__ShutdownDrainSeconds"] = "0",
        });
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Connections, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1) };
        using var client = new HttpClient(handler) { BaseAddress = service.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var image = ReferenceData.Load("shapes").Images[0];
        // Serialised once: the load generator shares the machine's cores with the service.
        var body = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new { instances = new[] { new { image } } });
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await PostAsync(client, body)).StatusCode);
        }

        // Warm, as a service in production is: the request path compiled at its optimised tier and the pools grown
        // under the same load, for a few seconds that are not measured (a cold process spends a fifth of its CPU in the
        // JIT in its first seconds under this load).
        var warmErrors = new ConcurrentQueue<string>();
        await LoadAsync(client, body, WarmUp, new ConcurrentQueue<Answer>(), warmErrors);
        Assert.Empty(warmErrors);
        var refusalsBefore = await ServerSideRefusalsAsync(service.Client);

        var before = service.ResidentBytes;
        var peak = before;
        var answers = new ConcurrentQueue<Answer>();
        var errors = new ConcurrentQueue<string>();
        var load = LoadAsync(client, body, Duration, answers, errors);
        while (!load.IsCompleted)
        {
            peak = Math.Max(peak, service.ResidentBytes);
            await Task.Delay(100);
        }

        await load;
        var after = service.ResidentBytes;

        var refusalsOnTheServer = (await ServerSideRefusalsAsync(service.Client)).Since(refusalsBefore);
        var served = answers.Where(a => a.Status == HttpStatusCode.OK).ToList();
        var refused = answers.Where(a => a.Status != HttpStatusCode.OK).ToList();
        var queueWaits = served.Select(a => a.QueueMs!.Value).Order().ToList();
        var refusedTimes = refused.Select(a => a.Ms).Order().ToList();
        var servedTimes = served.Select(a => a.Ms).Order().ToList();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Connections} connections for {Duration.TotalSeconds:F0} s on shapes (queue timeout {QueueTimeoutMicroseconds / 1000} ms): {answers.Count} answers, " +
            $"{served.Count} served (queueMs p50 {Quantile(queueWaits, 0.5):F2}, p99 {Quantile(queueWaits, 0.99):F2}, max {Quantile(queueWaits, 1):F2}; " +
            $"latency p50 {Quantile(servedTimes, 0.5):F1} ms, p99 {Quantile(servedTimes, 0.99):F1} ms), " +
            $"{refused.Count} refused ({string.Join(", ", refused.GroupBy(a => (int)a.Status).Select(g => $"{g.Key}: {g.Count()}"))}; " +
            $"latency p50 {Quantile(refusedTimes, 0.5):F1} ms, p99 {Quantile(refusedTimes, 0.99):F1} ms, max {Quantile(refusedTimes, 1):F1} ms), " +
            $"by the service's own clock (http.server.request.duration) {refusalsOnTheServer.ShareWithin5Ms:P1} of its refusals took at most 5 ms, {refusalsOnTheServer.ShareWithin10Ms:P1} at most 10 ms; " +
            $"{errors.Count} without an answer; resident memory {before / 1048576.0:F0} MB before, {peak / 1048576.0:F0} MB peak, {after / 1048576.0:F0} MB after"));

        Assert.Empty(errors);
        Assert.NotEmpty(served);
        Assert.All(refused, a => Assert.True(
            a.Status is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable && a.RetryAfter,
            $"{(int)a.Status} after {a.Ms:F1} ms, Retry-After {a.RetryAfter}"));
        // The limit, plus the instant between the expiry check and the dispatch.
        Assert.True(Quantile(queueWaits, 1) <= (QueueTimeoutMicroseconds / 1000.0) + 1, $"An admitted request waited {Quantile(queueWaits, 1)} ms in the queue.");
        // Generous: measured at the client, on cores shared with the load generator and other work, so the figure
        // holds the wait for a thread as well as the refusal; the figure itself is in the output.
        Assert.True(refused.Count == 0 || Quantile(refusedTimes, 0.99) < 2000, $"Refusals took up to {Quantile(refusedTimes, 0.99):F0} ms (p99).");
        // The service's own figure for refusals is in the output, not asserted: under the default 50 ms queue timeout
        // refusals happen only when other work takes the cores, and then they wait for a core inside the service too.
        Assert.True(peak - before < 256L * 1024 * 1024, $"Resident memory grew from {before / 1048576} MB to {peak / 1048576} MB.");
        Assert.False(service.HasExited);
    }

    /// <summary>Every one of <see cref="Connections"/> clients posts <paramref name="body"/> without pause for <paramref name="duration"/>.</summary>
    private static Task LoadAsync(HttpClient client, byte[] body, TimeSpan duration, ConcurrentQueue<Answer> answers, ConcurrentQueue<string> errors)
    {
        var clock = Stopwatch.StartNew();
        return Task.WhenAll(Enumerable.Range(0, Connections).Select(_ => Task.Run(async () =>
        {
            while (clock.Elapsed < duration)
            {
                var started = clock.Elapsed;
                try
                {
                    using var response = await PostAsync(client, body);
                    var text = await response.Content.ReadAsStringAsync();
                    var took = (clock.Elapsed - started).TotalMilliseconds;
                    double? queueMs = response.StatusCode == HttpStatusCode.OK
                        ? JsonNode.Parse(text)!["timings"]!["queueMs"]!.GetValue<double>()
                        : null;
                    answers.Enqueue(new Answer(response.StatusCode, took, queueMs, response.Headers.RetryAfter is not null));
                }
                catch (HttpRequestException ex)
                {
                    errors.Enqueue(ex.Message);
                }
            }
        })));
    }

    private sealed record Answer(HttpStatusCode Status, double Ms, double? QueueMs, bool RetryAfter);

    /// <summary>The service's 429/503 answers to predict so far, and how many took at most 5 and at most 10 ms.</summary>
    private sealed record RefusalCounts(double Count, double Within5Ms, double Within10Ms)
    {
        public RefusalCounts Since(RefusalCounts earlier) => new(Count - earlier.Count, Within5Ms - earlier.Within5Ms, Within10Ms - earlier.Within10Ms);

        public double ShareWithin5Ms => Count == 0 ? double.NaN : Within5Ms / Count;

        public double ShareWithin10Ms => Count == 0 ? double.NaN : Within10Ms / Count;
    }

    /// <summary>
    /// How many of the service's 429/503 answers to predict took at most 5 and at most 10 ms from the moment it read
    /// the request to its response, from the buckets of ASP.NET Core's own request duration histogram (edges at 5 and
    /// 10 ms): the time the request spent in the kernel before the service read it is not in it.
    /// </summary>
    private static async Task<RefusalCounts> ServerSideRefusalsAsync(HttpClient client)
    {
        var text = await client.GetStringAsync("/metrics");
        double count = 0, within5 = 0, within10 = 0;
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith("http_server_request_duration_seconds_bucket{", StringComparison.Ordinal) ||
                !line.Contains("/predict", StringComparison.Ordinal) ||
                !(line.Contains("http_response_status_code=\"429\"", StringComparison.Ordinal) || line.Contains("http_response_status_code=\"503\"", StringComparison.Ordinal)))
            {
                continue;
            }

            var value = double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            if (line.Contains("le=\"+Inf\"", StringComparison.Ordinal))
            {
                count += value;
            }
            else if (line.Contains("le=\"0.005\"", StringComparison.Ordinal))
            {
                within5 += value;
            }
            else if (line.Contains("le=\"0.01\"", StringComparison.Ordinal))
            {
                within10 += value;
            }
        }

        return new RefusalCounts(count, within5, within10);
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient client, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        return client.PostAsync("/v1/models/shapes/predict", content);
    }

    private static double Quantile(List<double> sorted, double quantile) =>
        sorted.Count == 0 ? double.NaN : sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(sorted.Count * quantile))];
}
