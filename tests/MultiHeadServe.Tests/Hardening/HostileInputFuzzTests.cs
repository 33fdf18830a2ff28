using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using MultiHeadServe.Tests.Infrastructure;
using Xunit.Abstractions;

namespace MultiHeadServe.Tests.Hardening;

/// <summary>
/// A seeded fuzzer against the real service process (<see cref="HostileRequests"/>): at least 10,000 hostile requests
/// over every public endpoint, eight at a time. None may answer 5xx or reset the connection; every /v1 error is
/// problem+json and every /v2 error carries the protocol's <c>error</c>; resident memory stays within 1.5× of what
/// it was before. <c>MHS_FUZZ_REQUESTS</c> and <c>MHS_FUZZ_SEED</c> change the count and the seed.
/// </summary>
[TakesAbout(seconds: 17)]
public sealed class HostileInputFuzzTests(ITestOutputHelper output)
{
    private const int Parallelism = 8;

    private static int Count => int.TryParse(Environment.GetEnvironmentVariable("MHS_FUZZ_REQUESTS"), out var n) ? n : 10_000;

    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("MHS_FUZZ_SEED"), out var s) ? s : 20261130;

    [Fact]
    public async Task HostileRequestsGetNoServerErrorNoResetAndTheProtocolsErrorShape()
    {
        await using var service = await ServiceProcess.StartAsync(ServiceProcess.BuiltService, RepositoryPaths.Root, new Dictionary<string, string>
        {
            ["ModelRepository__Only__0"] = "ranking",
            ["ModelRepository__Only__1"] = "ranking-mtl",
            ["ModelRepository__Only__2"] = "shapes",
            ["ModelRepository__Only__3"] = "conversion",
            ["Serilog__MinimumLevel__Default"] = "Warning",
            ["Serve__ShutdownDrainSeconds"] = "0",
            // The store's budget is 2 s here instead of 200 ms: the suite runs this beside other tests on two cores,
            // and a lookup descheduled past 200 ms would be the machine's 503, not the input's (seen once in ten runs).
            // An input that makes a lookup slow still fails the test at 2 s.
            ["FeatureStore__TimeoutMilliseconds"] = "2000",
        });
        var png = await File.ReadAllBytesAsync(Path.Combine(RepositoryPaths.Models, "shapes", "samples", "triangle.png"));
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Parallelism, AllowAutoRedirect = false };
        using var client = new HttpClient(handler) { BaseAddress = service.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

        // Sends every request, Parallelism at a time, and hands each outcome to record.
        async Task SendAllAsync(IReadOnlyList<HostileRequest> all, Action<int, HostileRequest, (int Status, string? Failure)> record)
        {
            var next = -1;
            await Task.WhenAll(Enumerable.Range(0, Parallelism).Select(worker => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < all.Count)
                {
                    record(i, all[i], await SendAsync(client, service.Client.BaseAddress!, all[i]));
                }
            })));
        }

        // Warm, as a service in production is: every model has answered, and the thread pool, Kestrel's buffers and the
        // collector's heaps have grown to this many requests at once (other hostile requests, from another seed), so
        // that what is measured below is what hostile input leaves behind, not the process's own warm-up (which, after
        // a warm-up of one request at a time, came to 1.5x once in ten runs: 145 MB to 217 MB).
        var warm = new HostileRequests(Seed + 1, png);
        await SendAllAsync([.. Enumerable.Range(0, 1_000).Select(_ => warm.Next())], (_, _, _) => { });

        var residentBefore = service.ResidentBytes;
        var generator = new HostileRequests(Seed, png);
        var requests = Enumerable.Range(0, Count).Select(_ => generator.Next()).ToList();
        var failures = new ConcurrentQueue<string>();
        var statuses = new ConcurrentDictionary<(string Kind, int Status), int>();
        var started = DateTime.UtcNow;
        await SendAllAsync(requests, (i, request, outcome) =>
        {
            statuses.AddOrUpdate((request.Kind, outcome.Status), 1, (_, n) => n + 1);
            if (outcome.Failure is not null)
            {
                failures.Enqueue($"#{i} {request}: {outcome.Failure}");
            }
        });
        var elapsed = DateTime.UtcNow - started;
        var residentAfter = service.ResidentBytes;

        output.WriteLine($"{requests.Count} hostile requests (seed {Seed}) in {elapsed.TotalSeconds:0.0} s; resident memory {residentBefore / 1048576.0:0} MB before, {residentAfter / 1048576.0:0} MB after.");
        foreach (var group in statuses.OrderBy(s => s.Key.Kind).ThenBy(s => s.Key.Status))
        {
            output.WriteLine($"  {group.Key.Kind,-20} {group.Key.Status,4}: {group.Value}");
        }

        Assert.False(service.HasExited, "the service exited");
        Assert.True(failures.IsEmpty, $"{failures.Count} of {requests.Count} requests failed the rules:\n" + string.Join('\n', failures.Take(25)));
        Assert.True(requests.Count >= 10_000 || Environment.GetEnvironmentVariable("MHS_FUZZ_REQUESTS") is not null, "the fuzzer sends at least 10,000 requests");
        Assert.True(residentAfter <= residentBefore * 1.5, $"resident memory grew from {residentBefore / 1048576.0:0} MB to {residentAfter / 1048576.0:0} MB");
    }

    [Fact]
    public async Task ABodyShorterThanItsLengthOrSentTooSlowlyIsRefusedWithA4xxNotA5xx()
    {
        await using var service = await ServiceProcess.StartAsync(ServiceProcess.BuiltService, RepositoryPaths.Root, new Dictionary<string, string>
        {
            ["ModelRepository__Only__0"] = "ranking",
            ["Serve__ShutdownDrainSeconds"] = "0",
        });
        var body = """{"user_id": "u0042", "item_id": "i0007"}""";
        var head = "POST /v1/models/ranking/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\n";

        // Truncated: 60 bytes promised, the first 20 sent, then nothing (the connection stays open).
        var truncated = await RawExchangeAsync(service.Client.BaseAddress!, Encoding.ASCII.GetBytes(head + "Content-Length: 60\r\n\r\n" + body[..20]), trickle: false);
        // Slow: the body at 8 bytes a second, below Kestrel's minimum data rate once its grace period is over.
        var slow = await RawExchangeAsync(service.Client.BaseAddress!, Encoding.ASCII.GetBytes(head + $"Content-Length: {body.Length + 200}\r\n\r\n" + body + new string(' ', 200)), trickle: true);

        output.WriteLine($"truncated: {truncated.Status} after {truncated.Seconds:0.0} s; slow: {slow.Status} after {slow.Seconds:0.0} s");
        Assert.InRange(truncated.Status, 400, 499);
        Assert.Equal(408, slow.Status);
    }

    /// <summary>Sends <paramref name="frame"/> (all at once, or 8 bytes a second) and reads the answer's status.</summary>
    private static async Task<(int Status, double Seconds)> RawExchangeAsync(Uri baseAddress, byte[] frame, bool trickle)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, baseAddress.Port));
        var started = DateTime.UtcNow;
        var headerEnd = Encoding.ASCII.GetString(frame).IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4;
        await socket.SendAsync(frame.AsMemory(0, trickle ? headerEnd : frame.Length), SocketFlags.None);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var sender = trickle
            ? Task.Run(async () =>
            {
                for (var at = headerEnd; at < frame.Length && !stop.IsCancellationRequested; at += 8)
                {
                    try
                    {
                        await Task.Delay(1000, stop.Token);
                        await socket.SendAsync(frame.AsMemory(at, Math.Min(8, frame.Length - at)), SocketFlags.None, stop.Token);
                    }
                    catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
                    {
                        return; // the server answered and closed
                    }
                }
            })
            : Task.CompletedTask;

        var received = new List<byte>();
        var buffer = new byte[4096];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token)) > 0)
            {
                received.AddRange(buffer.AsSpan(0, read));
            }
        }
        catch (SocketException)
        {
        }

        var seconds = (DateTime.UtcNow - started).TotalSeconds;
        await stop.CancelAsync();
        await sender;
        var text = Encoding.ASCII.GetString([.. received]);
        Assert.True(text.StartsWith("HTTP/1.1 ", StringComparison.Ordinal), $"no HTTP answer: '{text}'");
        return (int.Parse(text.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture), seconds);
    }

    /// <summary>Sends one request; the failure says which rule its answer broke, or is null.</summary>
    private static async Task<(int Status, string? Failure)> SendAsync(HttpClient client, Uri baseAddress, HostileRequest request)
    {
        if (request.RawFrame is not null)
        {
            return await SendRawAsync(baseAddress, request.RawFrame);
        }

        using var message = new HttpRequestMessage(new HttpMethod(request.Method), request.Path);
        if (request.Method is not "GET")
        {
            message.Content = new ByteArrayContent(request.Body);
            message.Content.Headers.ContentType = null;
            if (request.ContentType is not null)
            {
                message.Content.Headers.TryAddWithoutValidation("Content-Type", request.ContentType);
            }
        }

        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(message);
        }
        catch (HttpRequestException ex)
        {
            return (0, $"no answer: {ex.GetBaseException().Message}");
        }
        catch (TaskCanceledException)
        {
            return (0, "no answer within 30 s");
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            if (status >= 500)
            {
                return (status, $"answered {status}: {await response.Content.ReadAsStringAsync()}");
            }

            if (status < 400)
            {
                return (status, null);
            }

            var body = await response.Content.ReadAsStringAsync();
            var mediaType = response.Content.Headers.ContentType?.MediaType;
            if (status == 400 && body.Length == 0 && response.Headers.ConnectionClose == true)
            {
                return (status, null); // Kestrel refused the request line itself (a NUL in the path) before the app saw it
            }

            if (request.IsV2)
            {
                return HasError(body) ? (status, null) : (status, $"a /v2 error without 'error' ({mediaType}): {body}");
            }

            return mediaType == "application/problem+json" ? (status, null) : (status, $"a /v1 error that is not problem+json ({mediaType}): {body}");
        }
    }

    private static bool HasError(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object &&
                document.RootElement.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.String;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Framing broken by hand (the request asks to close after): the service answers a 4xx and closes; it never resets.</summary>
    private static async Task<(int Status, string? Failure)> SendRawAsync(Uri baseAddress, byte[] frame)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, baseAddress.Port), timeout.Token);
            await socket.SendAsync(frame, SocketFlags.None, timeout.Token);
            var received = new List<byte>();
            var buffer = new byte[8192];
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            {
                received.AddRange(buffer.AsSpan(0, read));
            }

            var text = Encoding.ASCII.GetString([.. received]);
            if (!text.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) || text.Length < 12 || !int.TryParse(text.AsSpan(9, 3), out var status))
            {
                return (0, $"no HTTP answer before the connection closed ({received.Count} bytes)");
            }

            return status >= 500 ? (status, $"answered {status}: {text[..Math.Min(text.Length, 400)]}") : (status, null);
        }
        catch (SocketException ex)
        {
            return (0, $"connection {ex.SocketErrorCode}");
        }
        catch (OperationCanceledException)
        {
            return (0, "no answer within 20 s");
        }
    }
}
