using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using MultiHeadServe.Tests.Infrastructure;
using Xunit.Abstractions;

namespace MultiHeadServe.Tests.Repository;

/// <summary>
/// The service as a real process, driven from outside: 50 unload/load cycles leave its resident memory where the first
/// left it (no session or batcher leaks), and <c>mhs models</c> controls it.
/// </summary>
[TakesAbout(seconds: 14)]
public sealed class LoadUnloadCycleTests(ITestOutputHelper output)
{
    private const string Key = "cycle-key";
    private const int Cycles = 50;

    // A warm round: its 32 predictions and the pause after them compiled at most this many methods.
    private const int WarmRound = 10;
    private const int MaxWarmUpRounds = 40;

    [Fact]
    public async Task FiftyUnloadLoadCyclesLeaveResidentMemoryLevel()
    {
        using var repository = new TempRepository().With("shapes").With("ranking");
        await using var service = await StartAsync(repository);
        var image = ReferenceData.Load("shapes").Images[0];
        long first = 0, middle = 0, last = 0;
        var warmUp = await WarmUpAsync(service, image);
        var started = Stopwatch.StartNew();

        for (var cycle = 1; cycle <= Cycles; cycle++)
        {
            foreach (var model in new[] { "shapes", "ranking" })
            {
                using var unload = await service.Client.PostAsync($"/v2/repository/models/{model}/unload", null);
                Assert.Equal(HttpStatusCode.OK, unload.StatusCode);
                using var load = await service.Client.PostAsync($"/v2/repository/models/{model}/load", null);
                Assert.Equal(HttpStatusCode.OK, load.StatusCode);
            }

            // Each cycle's versions serve (and create their batchers) before the next cycle unloads them.
            for (var i = 0; i < 4; i++)
            {
                using var shapes = await service.Client.PostJsonAsync("/v1/models/shapes/predict", new { image });
                using var ranking = await service.Client.PostJsonAsync("/v1/models/ranking/predict", new { user_id = "u0042", item_id = "i0007" });
                Assert.Equal(HttpStatusCode.OK, shapes.StatusCode);
                Assert.Equal(HttpStatusCode.OK, ranking.StatusCode);
            }

            if (cycle == 1)
            {
                first = service.ResidentBytes;
            }
            else if (cycle == Cycles / 2)
            {
                middle = service.ResidentBytes;
            }
            else if (cycle == Cycles)
            {
                last = service.ResidentBytes;
            }
        }

        output.WriteLine($"warm-up: {warmUp.Rounds} rounds of 32 predictions, the last compiling {warmUp.LastRound} methods");
        output.WriteLine($"{Cycles} cycles (unload+load of shapes and ranking, 8 predictions) in {started.Elapsed.TotalSeconds:0.0} s: resident " +
            $"{Mib(first)} MiB after cycle 1, {Mib(middle)} after cycle {Cycles / 2}, {Mib(last)} after cycle {Cycles} " +
            $"({Percent(first, last)} over the first cycle, {Percent(middle, last)} over the second half)");
        // Versions kept and never disposed (sessions, arenas of their warm-up at batch 32, batchers) grow it by about
        // 1.6 MiB a cycle: +49% by cycle 50 (measured with that leak put in). From a service whose request path has been
        // warmed up (what a reload meets in production), the cycles leave resident memory within -5% to +5% of the first
        // cycle's (the C allocator's and the runtime's placement, either way); from a cold start the runtime's own
        // warm-up of the HTTP path adds up to 10% more, cycles or not. The exact check that no version is left behind
        // is FiftyUnloadLoadCyclesDisposeEveryReplacedVersion.
        Assert.True(last <= first * 1.10, $"Resident memory grew from {Mib(first)} MiB after cycle 1 to {Mib(last)} MiB after cycle {Cycles}.");
    }

    [Fact]
    public async Task FiftyUnloadLoadCyclesDisposeEveryReplacedVersion()
    {
        using var repository = new TempRepository().With("shapes").With("ranking");
        await using var service = new ReloadingService(repository, ("ModelRepository:PollIntervalSeconds", "0"));
        var image = ReferenceData.Load("shapes").Images[0];
        var replaced = new List<MultiHeadServe.Models.LoadedModel>();

        for (var cycle = 1; cycle <= Cycles; cycle++)
        {
            foreach (var model in new[] { "shapes", "ranking" })
            {
                Assert.True(service.Registry.TryGetServed(model, out var served));
                replaced.AddRange(served.Versions.Values);
                using var unload = await service.Client.PostAsync($"/v2/repository/models/{model}/unload", null);
                using var load = await service.Client.PostAsync($"/v2/repository/models/{model}/load", null);
                Assert.Equal(HttpStatusCode.OK, load.StatusCode);
            }

            using var shapes = await service.Client.PostJsonAsync("/v1/models/shapes/predict", new { image });
            using var ranking = await service.Client.PostJsonAsync("/v1/models/ranking/predict", new { user_id = "u0042", item_id = "i0007" });
            Assert.Equal(HttpStatusCode.OK, shapes.StatusCode);
            Assert.Equal(HttpStatusCode.OK, ranking.StatusCode);
        }

        // Every replaced version's sessions were disposed and its batcher stopped; only the two served ones remain.
        await Task.WhenAll(replaced.Select(v => v.Drained)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(2 * Cycles, replaced.Count);
        Assert.All(replaced, v => Assert.True(v.Retired));
        Assert.Equal(2, service.Inference.Batchers);
    }

    /// <summary>
    /// Serves the predictions the cycles serve, in rounds, until two rounds in a row leave the runtime's JIT (almost)
    /// nothing to compile: the request path tiered up, as in a service that has been serving for a while. (One quiet
    /// round can come before tiering up has begun.) Returns the rounds and the methods compiled in the last one.
    /// </summary>
    private static async Task<(int Rounds, long LastRound)> WarmUpAsync(ServiceProcess service, string image)
    {
        var compiled = await JitCompiledMethodsAsync(service);
        var quiet = 0;
        for (var round = 1; ; round++)
        {
            for (var i = 0; i < 16; i++)
            {
                using var shapes = await service.Client.PostJsonAsync("/v1/models/shapes/predict", new { image });
                using var ranking = await service.Client.PostJsonAsync("/v1/models/ranking/predict", new { user_id = "u0042", item_id = "i0007" });
                Assert.Equal(HttpStatusCode.OK, shapes.StatusCode);
                Assert.Equal(HttpStatusCode.OK, ranking.StatusCode);
            }

            // Tiering up waits for a pause in new compilations (0.1 s by default).
            await Task.Delay(300);
            var now = await JitCompiledMethodsAsync(service);
            quiet = now - compiled <= WarmRound ? quiet + 1 : 0;
            if (quiet == 2 || round == MaxWarmUpRounds)
            {
                return (round, now - compiled);
            }

            compiled = now;
        }
    }

    private static async Task<long> JitCompiledMethodsAsync(ServiceProcess service) =>
        (long)MetricsExposition.Parse(await service.Client.GetStringAsync("/metrics"))["dotnet_jit_compiled_methods_total"];

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);

    private static string Percent(long from, long to) => (100.0 * (to - from) / from).ToString("+0.0;-0.0", System.Globalization.CultureInfo.InvariantCulture) + "%";

    [Fact]
    public async Task MhsModelsListsLoadsAndUnloadsARunningService()
    {
        using var repository = new TempRepository().With("shapes").With("ranking");
        await using var service = await StartAsync(repository);
        var url = service.Client.BaseAddress!.ToString();

        var unload = await MhsAsync("models", "unload", "shapes", "--url", url, "--api-key", Key);
        var list = await MhsAsync("models", "list", "--url", url, "--api-key", Key);
        var statusAfterUnload = (await service.Client.PostJsonAsync("/v1/models/shapes/predict", new { image = "x" })).StatusCode;
        var load = await MhsAsync("models", "load", "shapes", "--url", url, "--api-key", Key);
        var ready = await MhsAsync("models", "list", "--ready", "--json", "--url", url, "--api-key", Key);
        var unknown = await MhsAsync("models", "load", "nope", "--url", url, "--api-key", Key);
        var noKey = await MhsAsync("models", "list", "--url", url);
        var noUrl = await MhsAsync("models", "list");
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await service.Client.PostJsonAsync("/v1/models/ranking/predict",
                new { instances = new[] { new { features = Enumerable.Repeat(0.5f, 12).ToArray() }, new { features = Enumerable.Repeat(0.25f, 12).ToArray() } } })).StatusCode);
        }

        var stats = await MhsAsync("models", "stats", "ranking", "--url", url, "--api-key", Key);
        var unknownStats = await MhsAsync("models", "stats", "nope", "--url", url, "--api-key", Key);

        Assert.Equal((0, "Unloaded shapes."), (unload.Code, unload.Output.Trim()));
        Assert.Equal(0, list.Code);
        Assert.Matches(@"ranking\s+1\s+READY", list.Output);
        Assert.Matches(@"shapes\s+UNAVAILABLE\s+unloaded", list.Output);
        Assert.Equal(HttpStatusCode.NotFound, statusAfterUnload);
        Assert.Equal((0, "Loaded shapes."), (load.Code, load.Output.Trim()));
        Assert.Equal(0, ready.Code);
        Assert.Contains("\"name\":\"shapes\",\"version\":\"1\",\"state\":\"READY\"", ready.Output, StringComparison.Ordinal);
        Assert.Equal(1, unknown.Code);
        Assert.Contains("404", unknown.Error, StringComparison.Ordinal);
        Assert.Contains("'nope'", unknown.Error, StringComparison.Ordinal);
        Assert.Equal(1, noKey.Code);
        Assert.Contains("401", noKey.Error, StringComparison.Ordinal);
        Assert.Equal(2, noUrl.Code);
        Assert.Contains("--url", noUrl.Error, StringComparison.Ordinal);
        // Three requests of two rows, each run alone: 6 rows in 3 runs, nothing failed, a run time measured.
        Assert.Equal(0, stats.Code);
        Assert.Matches(@"ranking\s+1\s+3\s+0\s+6\s+3\s+2\.0\s+0\.000\s+\d+\.\d{3}", stats.Output);
        Assert.Equal(1, unknownStats.Code);
        Assert.Contains("404", unknownStats.Error, StringComparison.Ordinal);
    }

    private static Task<ServiceProcess> StartAsync(TempRepository repository) =>
        ServiceProcess.StartAsync(ServiceProcess.BuiltService, RepositoryPaths.Root, new Dictionary<string, string>
        {
            ["ModelRepository__Path"] = repository.Path,
            ["ModelRepository__Provider"] = "Cpu",
            ["ModelRepository__IntraOpThreads"] = "1",
            ["ModelRepository__PollIntervalSeconds"] = "0",
            ["Security__ApiKeys__0"] = Key,
            ["Security__ProtectOperationalEndpoints"] = "false",
        }).ContinueWith(started =>
        {
            started.Result.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
            return started.Result;
        }, TaskScheduler.Default);

    /// <summary>Runs the built mhs tool, as a user would, without MHS_URL or MHS_API_KEY from this environment.</summary>
    private static async Task<(int Code, string Output, string Error)> MhsAsync(params string[] args)
    {
        var configuration = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)))!;
        var tool = Path.Combine(RepositoryPaths.Root, "src", "MultiHeadServe.Cli", "bin", configuration, "net10.0", "mhs.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(tool);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("MHS_URL");
        start.Environment.Remove("MHS_API_KEY");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
