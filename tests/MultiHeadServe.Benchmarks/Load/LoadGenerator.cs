using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace MultiHeadServe.Benchmarks.Load;

/// <summary>
/// One closed-loop load: <see cref="Concurrency"/> workers, each sending a prediction and waiting for it before
/// sending the next. A prediction is one POST per target, issued concurrently; it completes when every answer is in.
/// </summary>
/// <param name="Concurrency">Workers, i.e. predictions in flight.</param>
/// <param name="Targets">The endpoints one prediction calls (one for a multi-head model, x for the old way).</param>
/// <param name="Bodies">Request bodies; workers cycle through them from different offsets.</param>
/// <param name="Warmup">Load before measuring: connections open, the JIT and the server's pools settle.</param>
/// <param name="Duration">The measured window.</param>
/// <param name="MaxPredictions">The window also ends after this many measured predictions.</param>
internal sealed record LoadPlan(int Concurrency, IReadOnlyList<Uri> Targets, IReadOnlyList<byte[]> Bodies, TimeSpan Warmup, TimeSpan Duration, long MaxPredictions);

/// <summary>What the client saw in the measured window.</summary>
/// <param name="Elapsed">The window's length.</param>
/// <param name="Latencies">One sample per prediction completed (successfully) in the window.</param>
/// <param name="Errors">Failed calls (non-2xx or transport errors), warm-up included.</param>
/// <param name="FirstError">The first failure, for the report.</param>
internal sealed record LoadWindow(TimeSpan Elapsed, LatencySamples Latencies, long Errors, string? FirstError)
{
    public double PredictionsPerSecond => Latencies.Count / Elapsed.TotalSeconds;
}

/// <summary>Drives a server over loopback with one shared <see cref="HttpClient"/>.</summary>
internal sealed class LoadGenerator : IDisposable
{
    private const int ErrorTextLength = 300;

    private readonly HttpClient _client;

    public LoadGenerator()
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            // One connection per call in flight: workers × calls per prediction.
            MaxConnectionsPerServer = int.MaxValue,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        _client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>The client, for scrapes between windows.</summary>
    public HttpClient Client => _client;

    /// <summary>
    /// Sends one body to <paramref name="target"/> and checks the answer: 200 and, for a predict call, every
    /// head in <paramref name="expectedHeads"/>. A scenario that measures errors measures nothing.
    /// </summary>
    /// <exception cref="InvalidOperationException">The answer is not what the scenario needs.</exception>
    public async Task ProbeAsync(Uri target, byte[] body, IReadOnlyCollection<string> expectedHeads, CancellationToken cancellationToken)
    {
        using var request = Request(target, body);
        using var response = await _client.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"{(body.Length == 0 ? "GET" : "POST")} {target.AbsolutePath} answered {(int)response.StatusCode}: {Shorten(text)}");
        }

        if (expectedHeads.Count == 0)
        {
            return;
        }

        using var document = JsonDocument.Parse(text);
        var missing = document.RootElement.TryGetProperty("heads", out var heads) && heads.ValueKind == JsonValueKind.Object
            ? expectedHeads.Where(head => !heads.TryGetProperty(head, out _)).ToList()
            : [.. expectedHeads];
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"POST {target.AbsolutePath} did not return head(s) {string.Join(", ", missing)}: {Shorten(text)}");
        }
    }

    /// <summary>
    /// Runs <paramref name="plan"/>: warm-up, then <paramref name="atWindowStart"/>, the measured window,
    /// <paramref name="atWindowEnd"/> (both while the load is still running, so the server is measured at steady
    /// state), then lets every worker finish its prediction in flight.
    /// </summary>
    public async Task<LoadWindow> RunAsync(LoadPlan plan, Func<CancellationToken, Task> atWindowStart, Func<CancellationToken, Task> atWindowEnd,
        CancellationToken cancellationToken)
    {
        if (plan.Targets.Any(t => !IPAddress.TryParse(t.Host, out var address) || !IPAddress.IsLoopback(address)))
        {
            throw new ArgumentException("The benchmark only drives servers on a loopback address.", nameof(plan));
        }

        var run = new RunState(plan);
        var workers = Enumerable.Range(0, plan.Concurrency).Select(i => Task.Run(() => WorkAsync(i, run), CancellationToken.None)).ToArray();
        TimeSpan elapsed;
        try
        {
            await Task.Delay(plan.Warmup, cancellationToken);
            await atWindowStart(cancellationToken);
            var start = Stopwatch.GetTimestamp();
            Volatile.Write(ref run.WindowStart, start);
            await Task.WhenAny(Task.Delay(plan.Duration, cancellationToken), run.LimitReached.Task);
            var end = Stopwatch.GetTimestamp();
            Volatile.Write(ref run.WindowEnd, end);
            elapsed = Stopwatch.GetElapsedTime(start, end);
            await atWindowEnd(cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
        }
        finally
        {
            Volatile.Write(ref run.Stopping, true);
            await Task.WhenAll(workers);
        }

        // Read only once every worker has stopped adding samples.
        return new LoadWindow(elapsed, new LatencySamples(run.Samples), Interlocked.Read(ref run.Errors), run.FirstError);
    }

    private async Task WorkAsync(int worker, RunState run)
    {
        var plan = run.Plan;
        var samples = run.Samples[worker];
        var buffers = plan.Targets.Select(_ => new byte[16 * 1024]).ToArray();
        var calls = new Task<string?>[plan.Targets.Count];
        // Workers start at different bodies so concurrent requests are not all the same image or key.
        var next = worker * 7;
        while (!Volatile.Read(ref run.Stopping))
        {
            var body = plan.Bodies[next++ % plan.Bodies.Count];
            var begin = Stopwatch.GetTimestamp();
            string? error;
            if (calls.Length == 1)
            {
                error = await CallAsync(plan.Targets[0], body, buffers[0]);
            }
            else
            {
                for (var t = 0; t < calls.Length; t++)
                {
                    calls[t] = CallAsync(plan.Targets[t], body, buffers[t]);
                }

                error = (await Task.WhenAll(calls)).FirstOrDefault(e => e is not null);
            }

            var finish = Stopwatch.GetTimestamp();
            if (error is not null)
            {
                Interlocked.Increment(ref run.Errors);
                Interlocked.CompareExchange(ref run.FirstError, error, null);
            }
            else if (finish >= Volatile.Read(ref run.WindowStart) && finish <= Volatile.Read(ref run.WindowEnd))
            {
                samples.Add(finish - begin);
                if (Interlocked.Increment(ref run.Measured) >= plan.MaxPredictions)
                {
                    run.LimitReached.TrySetResult();
                }
            }
        }
    }

    /// <summary>A JSON POST of <paramref name="body"/>; a GET when the body is empty (health and floor probes).</summary>
    private static HttpRequestMessage Request(Uri target, byte[] body)
    {
        if (body.Length == 0)
        {
            return new HttpRequestMessage(HttpMethod.Get, target);
        }

        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return new HttpRequestMessage(HttpMethod.Post, target) { Content = content };
    }

    /// <returns>Null on success, otherwise what went wrong.</returns>
    private async Task<string?> CallAsync(Uri target, byte[] body, byte[] buffer)
    {
        try
        {
            using var request = Request(target, body);
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (!response.IsSuccessStatusCode)
            {
                return $"{(int)response.StatusCode} from {target.AbsolutePath}: {Shorten(await response.Content.ReadAsStringAsync())}";
            }

            // Read the whole answer, as a client must, into a reused buffer.
            await using var stream = await response.Content.ReadAsStreamAsync();
            while (await stream.ReadAsync(buffer) > 0)
            {
            }

            return null;
        }
        catch (HttpRequestException ex)
        {
            return $"{target.AbsolutePath}: {ex.Message}";
        }
        catch (TaskCanceledException)
        {
            return $"{target.AbsolutePath}: no answer within {_client.Timeout.TotalSeconds:0} s";
        }
    }

    private static string Shorten(string text)
    {
        var flat = new StringBuilder(text).Replace('\n', ' ').ToString();
        return flat.Length <= ErrorTextLength ? flat : flat[..ErrorTextLength] + "…";
    }

    public void Dispose() => _client.Dispose();

    private sealed class RunState(LoadPlan plan)
    {
        public long WindowStart = long.MaxValue;
        public long WindowEnd = long.MaxValue;
        public long Measured;
        public long Errors;
        public bool Stopping;
        public string? FirstError;

        public LoadPlan Plan { get; } = plan;

        /// <summary>Per worker, so recording a sample takes no lock.</summary>
        public List<long>[] Samples { get; } = [.. Enumerable.Range(0, plan.Concurrency).Select(_ => new List<long>(64 * 1024))];

        public TaskCompletionSource LimitReached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
