using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// SIGTERM under load on keep-alive connections: every request the service began to receive is answered, and every
/// client is told, with its answer, to close its connection (behind a load balancer, which readiness has by then
/// told to stop sending, it moves to another replica; here it stops).
/// </summary>
[TakesAbout(seconds: 5)]
public sealed class GracefulShutdownTests
{
    private const int Clients = 32;

    [Fact]
    public async Task SigtermUnderLoadLeavesNoRequestWithoutAnAnswer()
    {
        await using var service = await ServiceProcess.StartAsync(ServiceProcess.BuiltService, RepositoryPaths.Root, new Dictionary<string, string>
        {
            ["ModelRepository__Only__0"] = "ranking",
            ["Serve__ShutdownDrainSeconds"] = "2",
        });
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Clients, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        using var client = new HttpClient(handler) { BaseAddress = service.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var answered = 0;
        var answeredAfterSigterm = 0;
        var refused = 0;
        var toldToLeave = 0;
        var lost = new List<string>();
        var terminated = false;
        using var stop = new CancellationTokenSource();

        async Task ClientAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await client.PostAsync("/v1/models/ranking/predict",
                        new StringContent("""{"user_id": "u0042", "item_id": "i0007"}""", System.Text.Encoding.UTF8, "application/json"));
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                    Interlocked.Increment(ref answered);
                    if (Volatile.Read(ref terminated))
                    {
                        Interlocked.Increment(ref answeredAfterSigterm);
                    }

                    if (response.Headers.ConnectionClose == true)
                    {
                        Interlocked.Increment(ref toldToLeave);
                        return;
                    }
                }
                catch (HttpRequestException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
                {
                    // The server has stopped accepting: this request never reached it.
                    Interlocked.Increment(ref refused);
                    return;
                }
                catch (HttpRequestException ex)
                {
                    lock (lost)
                    {
                        lost.Add(ex.Message + " / " + ex.InnerException?.Message);
                    }
                }
            }
        }

        var clients = Enumerable.Range(0, Clients).Select(_ => Task.Run(ClientAsync)).ToList();
        await Task.Delay(TimeSpan.FromSeconds(1));
        Volatile.Write(ref terminated, true);
        service.Terminate();
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        using var probe = new HttpClient { BaseAddress = service.Client.BaseAddress };
        var readiness = await probe.GetAsync("/readyz");
        var deadline = Stopwatch.StartNew();
        while (!service.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(50);
        }

        await stop.CancelAsync();
        await Task.WhenAll(clients);

        Assert.True(service.HasExited, "The service did not stop within 30 s of SIGTERM.");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, readiness.StatusCode);
        Assert.True(answeredAfterSigterm > 0, "Nothing was served while draining.");
        Assert.Equal(Clients, toldToLeave + refused);
        Assert.True(lost.Count == 0, $"{lost.Count} request(s) got no answer ({answered} answered, {refused} refused): {string.Join("; ", lost.Take(3))}");
        // The drain is said once; the readiness probes it fails on purpose are not errors.
        Assert.Contains(service.Output, line => line.Contains("Stopping: draining", StringComparison.Ordinal));
        Assert.DoesNotContain(service.Output, line => line.Contains(" ERR]", StringComparison.Ordinal));
    }
}
