using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using MultiHeadServe.Tests.Infrastructure;
using Xunit.Abstractions;

namespace MultiHeadServe.Tests.Hardening;

/// <summary>
/// Small bodies that declare huge sizes, sent to the service as its own process eight at a time: a /v2 input whose
/// shape claims 100000x3x64x64 floats in 83 bytes, and evaluate labels whose nesting claims 1000x1000x1000 values in a
/// few kilobytes. Each is refused with a 4xx at once, before anything of the declared size is allocated, whether or
/// not the process runs under a 2 GiB heap limit (as in a pod whose memory limit is 2 GiB).
/// </summary>
public sealed class DeclaredSizeTests(ITestOutputHelper output)
{
    /// <summary>83 bytes that declare 4.9 GB of FP32.</summary>
    private const string HugeShape = """{"inputs":[{"name":"image","datatype":"FP32","shape":[100000,3,64,64],"data":[0]}]}""";

    private const int Concurrent = 8;
    private const int Rounds = 3;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task HugeDeclaredShapesAndLabelNestingAreRefusedAtOnceWithoutGrowingMemory(bool heapHardLimit)
    {
        var environment = new Dictionary<string, string>
        {
            ["ModelRepository__Only__0"] = "ranking",
            ["ModelRepository__Only__1"] = "shapes",
            ["Serilog__MinimumLevel__Default"] = "Warning",
            ["Serve__ShutdownDrainSeconds"] = "0",
        };
        if (heapHardLimit)
        {
            environment["DOTNET_GCHeapHardLimit"] = "0x80000000";
        }

        await using var service = await ServiceProcess.StartAsync(ServiceProcess.BuiltService, RepositoryPaths.Root, environment);
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 2 * Concurrent };
        using var client = new HttpClient(handler) { BaseAddress = service.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var labels = NestedLabels(1000);
        Assert.Equal(83, Encoding.UTF8.GetByteCount(HugeShape));

        // Warm both paths (and the connections), so start-up allocations are not counted as growth.
        for (var i = 0; i < 4; i++)
        {
            await SendAsync(client, "/v2/models/shapes/infer", HugeShape);
            await SendAsync(client, "/v1/models/ranking/evaluate", labels);
        }

        var before = service.ResidentBytes;
        var peak = before;
        var results = new List<(string Kind, HttpStatusCode Status, double Ms, string Body)>();
        for (var round = 0; round < Rounds; round++)
        {
            var burst = Task.WhenAll(Enumerable.Range(0, Concurrent).SelectMany(_ => new[]
            {
                SendAsync(client, "/v2/models/shapes/infer", HugeShape).ContinueWith(t => ("v2 shape", t.Result.Status, t.Result.Ms, t.Result.Body), TaskScheduler.Default),
                SendAsync(client, "/v1/models/ranking/evaluate", labels).ContinueWith(t => ("labels", t.Result.Status, t.Result.Ms, t.Result.Body), TaskScheduler.Default),
            }));
            while (!burst.IsCompleted)
            {
                peak = Math.Max(peak, service.ResidentBytes);
                await Task.Delay(5);
            }

            results.AddRange(await burst);
            peak = Math.Max(peak, service.ResidentBytes);
        }

        var after = service.ResidentBytes;
        foreach (var kind in results.GroupBy(r => r.Kind))
        {
            var times = kind.Select(r => r.Ms).Order().ToList();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{kind.Key} ({(heapHardLimit ? "DOTNET_GCHeapHardLimit=0x80000000" : "no heap limit")}), {Rounds} rounds of {Concurrent} at once alongside {Concurrent} of the other: " +
                $"statuses {string.Join(", ", kind.GroupBy(r => (int)r.Status).Select(g => $"{g.Key} x{g.Count()}"))}; " +
                $"latency median {times[times.Count / 2]:F1} ms, max {times[^1]:F1} ms"));
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"resident memory {before / 1048576.0:F1} MB before, {peak / 1048576.0:F1} MB peak (+{(peak - before) / 1048576.0:F1} MB), {after / 1048576.0:F1} MB after; labels body {Encoding.UTF8.GetByteCount(labels)} bytes"));

        Assert.All(results, r => Assert.True((int)r.Status is >= 400 and < 500, $"{r.Kind}: {(int)r.Status} {r.Body}"));
        Assert.All(results.Where(r => r.Kind == "v2 shape"), r => Assert.Contains("\"error\"", r.Body, StringComparison.Ordinal));
        Assert.All(results.Where(r => r.Kind == "labels"), r => Assert.Contains("\"field\"", r.Body, StringComparison.Ordinal));
        // Generous for a shared machine; the measured figures are in the output.
        Assert.All(results, r => Assert.True(r.Ms < 2000, $"{r.Kind} took {r.Ms:F0} ms."));
        Assert.True(peak - before < 100L * 1024 * 1024, $"Resident memory grew by {(peak - before) / 1048576} MB.");
        Assert.False(service.HasExited);
    }

    /// <summary>
    /// An evaluate request whose <c>dwell</c> labels nest three deep, each level's array holding
    /// <paramref name="width"/> elements, only the first of which nests further: a shape of width³ declared in a few KB.
    /// </summary>
    private static string NestedLabels(int width)
    {
        var rest = string.Concat(Enumerable.Repeat(",0", width - 1));
        var nested = "0";
        for (var depth = 0; depth < 3; depth++)
        {
            nested = "[" + nested + rest + "]";
        }

        return """{"user_id":"u0042","item_id":"i0007","labels":{"dwell":""" + nested + "}}";
    }

    private static async Task<(HttpStatusCode Status, double Ms, string Body)> SendAsync(HttpClient client, string path, string json)
    {
        var clock = Stopwatch.StartNew();
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await client.PostAsync(path, content);
        var body = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, clock.Elapsed.TotalMilliseconds, body);
    }
}
