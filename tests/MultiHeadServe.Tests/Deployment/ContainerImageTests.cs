using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using MultiHeadServe.Tests.Infrastructure;
using Xunit.Abstractions;

namespace MultiHeadServe.Tests.Deployment;

/// <summary>
/// The image the Dockerfile builds, run as a container: built with buildah by deploy/container/build.sh (or
/// taken from MHS_CONTAINER_IMAGE, which .ci/run sets after building it) and run with podman on the host's
/// network, as an orchestrator would run it.
/// </summary>
[TakesAbout(seconds: 25)]
public sealed class ContainerImageTests(ITestOutputHelper output)
{
    private static readonly string Podman = Path.Combine(RepositoryPaths.Root, "deploy", "container", "podman.sh");

    [ContainerFact]
    public async Task TheImageRunsAsNonRootPassesItsHealthCheckPredictsAsTheServiceDoesAndStopsCleanlyOnSigterm()
    {
        var image = Environment.GetEnvironmentVariable("MHS_CONTAINER_IMAGE") is { Length: > 0 } built ? built : await BuildAsync();
        var size = long.Parse((await PodmanAsync("image", "inspect", "--format", "{{.Size}}", image)).Trim());
        output.WriteLine($"{image}: {size / 1_000_000} MB");
        Assert.Equal("1654", (await PodmanAsync("image", "inspect", "--format", "{{.Config.User}}", image)).Trim());
        // The Dockerfile's HEALTHCHECK survived the build (an OCI-format image would have dropped it).
        Assert.Contains("/healthz", await PodmanAsync("image", "inspect", "--format", "{{.Config.Healthcheck}}", image), StringComparison.Ordinal);

        var (name, port) = await StartAsync(image);
        try
        {
            // The process the image starts (PID 1: the exec form of ENTRYPOINT) runs as the image's user, not root.
            var status = await PodmanAsync("exec", name, "cat", "/proc/1/status");
            Assert.Matches(@"(?m)^Uid:\s+1654\s+1654\s+1654\s+1654$", status);
            Assert.Contains("dotnet", await PodmanAsync("exec", name, "cat", "/proc/1/cmdline"), StringComparison.Ordinal);

            // The image's own HEALTHCHECK command, run by podman inside the container, passes once the service listens.
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while ((await RunAsync(Podman, ["healthcheck", "run", name])).ExitCode != 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the HEALTHCHECK did not pass within 120 s:\n" + await PodmanAsync("logs", name));
                var state = (await PodmanAsync("inspect", "--format", "{{.State.Status}}", name)).Trim();
                Assert.True(state == "running", $"the container is {state}:\n" + await PodmanAsync("logs", name));
                await Task.Delay(500);
            }

            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            await WaitUntilReadyAsync(client, name);

            // Predictions equal those of the service in memory: a store-backed model (features from the image's
            // SQLite file, seeded at start-up) and an image model (SkiaSharp's native decoder in the image).
            await using var reference = new ServeFactory();
            using var referenceClient = reference.CreateClient();
            var requests = new (string Url, object Body)[]
            {
                ("/v1/models/ranking/predict", new { instances = new[] { new { user_id = "u0042", item_id = "i0007" }, new { user_id = "u0001", item_id = "i0100" } } }),
                ("/v1/models/shapes/predict", new { image = ReferenceData.Load("shapes").Images[0] }),
            };
            foreach (var (url, body) in requests)
            {
                var answer = await client.PostJsonAsync(url, body);
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                var expected = await (await referenceClient.PostJsonAsync(url, body)).JsonAsync();
                var actual = await answer.JsonAsync();
                JsonAssert.SameNumbers(Heads(expected), Heads(actual), 1e-5);
            }

            // SIGTERM reaches the service: it drains (readiness 503) and exits with 0 well before a kill would be needed.
            var stopping = Stopwatch.StartNew();
            await PodmanAsync("kill", "--signal", "TERM", name);
            var drained = false;
            while (!drained && stopping.Elapsed < TimeSpan.FromSeconds(4))
            {
                try
                {
                    drained = (await client.GetAsync("/readyz")).StatusCode == HttpStatusCode.ServiceUnavailable;
                }
                catch (HttpRequestException)
                {
                    break;
                }

                await Task.Delay(100);
            }

            var exitCode = (await PodmanAsync("wait", name)).Trim();
            stopping.Stop();
            output.WriteLine($"stopped in {stopping.Elapsed.TotalSeconds:F1} s with exit code {exitCode}");
            Assert.True(drained, "readiness did not turn 503 after SIGTERM:\n" + await PodmanAsync("logs", name));
            Assert.Equal("0", exitCode);
            Assert.InRange(stopping.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(20));
        }
        finally
        {
            await RunAsync(Podman, ["rm", "--force", "--time", "0", name]);
        }
    }

    private static JsonElement Heads(JsonElement response) =>
        response.TryGetProperty("predictions", out var predictions)
            ? JsonSerializer.SerializeToElement(predictions.EnumerateArray().Select(p => p.GetProperty("heads")).ToList())
            : response.GetProperty("heads");

    private static async Task WaitUntilReadyAsync(HttpClient client, string name)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                if ((await client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, "/readyz did not answer 200 within 120 s:\n" + await PodmanAsync("logs", name));
            await Task.Delay(250);
        }
    }

    private async Task<string> BuildAsync()
    {
        var build = await RunAsync(Path.Combine(RepositoryPaths.Root, "deploy", "container", "build.sh"), [], TimeSpan.FromMinutes(20));
        output.WriteLine(build.Error);
        Assert.True(build.ExitCode == 0, "deploy/container/build.sh failed:\n" + build.Error);
        return build.Output.Trim().Split('\n')[^1];
    }

    private static async Task<string> PodmanAsync(params string[] arguments)
    {
        var result = await RunAsync(Podman, arguments);
        Assert.True(result.ExitCode == 0, $"podman {string.Join(' ', arguments)} exited with {result.ExitCode}:\n{result.Output}\n{result.Error}");
        return result.Output + result.Error;
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(string script, IReadOnlyList<string> arguments, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{script} {string.Join(' ', arguments)} did not finish within {timeout ?? TimeSpan.FromMinutes(2)}");
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Runs the image on ports that were free a moment before (REST and gRPC). With host networking, a connection another
    /// test opens meanwhile can take one, and the service then exits at start saying so: that start is made again on
    /// other ports (any other exit fails the test with the container's log).
    /// </summary>
    private static async Task<(string Name, int Port)> StartAsync(string image)
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort();
            var name = "mhs-test-" + Guid.NewGuid().ToString("N")[..12];
            // The image's gRPC port (8001) too: on the host's network another process may hold it.
            await PodmanAsync("run", "--detach", "--name", name, "--network", "host", "--env", $"ASPNETCORE_HTTP_PORTS={port}",
                "--env", $"Serve__GrpcPort={FreePort()}", image);
            await Task.Delay(1000);
            if ((await PodmanAsync("inspect", "--format", "{{.State.Status}}", name)).Trim() != "exited")
            {
                return (name, port);
            }

            var log = await PodmanAsync("logs", name);
            await RunAsync(Podman, ["rm", "--force", "--time", "0", name]);
            Assert.True(attempt < 3 && log.Contains("address already in use", StringComparison.OrdinalIgnoreCase), "the container exited at start:\n" + log);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Skipped, with the reason, where buildah or podman is not installed (.ci/run installs both).</summary>
    public sealed class ContainerFactAttribute : FactAttribute
    {
        public ContainerFactAttribute()
        {
            var missing = new[] { "buildah", "podman" }.Where(tool => !OnPath(tool)).ToList();
            if (missing.Count > 0)
            {
                Skip = $"{string.Join(" and ", missing)} not installed, so the image cannot be built and run here " +
                    "(Debian: apt-get install buildah podman mmdebstrap runc; .ci/run installs them).";
            }
        }

        private static bool OnPath(string tool) =>
            (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
                .Any(directory => File.Exists(Path.Combine(directory, tool)));
    }
}
