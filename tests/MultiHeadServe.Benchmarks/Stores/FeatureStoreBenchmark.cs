using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text;
using System.Text.Json;
using MultiHeadServe.Benchmarks.Hosting;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Benchmarks.Stores;

/// <summary>
/// <c>feature-stores</c>: the <c>ranking</c> model served with its features from SQLite, PostgreSQL and Redis, one
/// store after another in one run: the service's fetch time per request (its own <c>timings.fetchMs</c>) and
/// predictions per second under the same load. PostgreSQL and Redis are real servers started for the run (the
/// test fixtures), loaded with <c>mhs features import</c>; the SQLite store is the service's embedded default.
/// </summary>
internal static class FeatureStoreBenchmark
{
    public const string Command = "feature-stores";

    public const string Usage =
        "feature-stores [--duration <s>] [--warmup <s>] [--concurrency <n>] [--instances <n>] [--service <MultiHeadServe.dll>]\n" +
        "  ranking served from SQLite, PostgreSQL and Redis in turn (defaults: 5 s, 2 s, 8 clients, 32 instances per request).";

    public static async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var settings = Settings.Parse(args);
        var root = RepositoryRoot.Find();
        var models = Path.Combine(root, "models");
        var service = ServiceAssembly.Locate(settings.Service, root);
        var mhs = Mhs(root);
        var data = Directory.CreateTempSubdirectory("mhs-store-bench-").FullName;

        var postgres = new PostgresServer();
        var redis = new RedisServer();
        try
        {
            Console.WriteLine("Starting PostgreSQL and Redis and loading them with mhs features import...");
            await postgres.InitializeAsync();
            await redis.InitializeAsync();
            await ImportAsync(mhs, models, ["--postgres", postgres.ConnectionString], cancellationToken);
            await ImportAsync(mhs, models, ["--redis", redis.Configuration], cancellationToken);

            var stores = new (string Name, Dictionary<string, string> Settings)[]
            {
                ("sqlite", new() { ["FeatureStore__SqlitePath"] = Path.Combine(data, "features.db") }),
                ("postgres", new() { ["FeatureStore__PostgresConnectionString"] = postgres.ConnectionString + ";Minimum Pool Size=4" }),
                ("redis", new() { ["FeatureStore__RedisConfiguration"] = redis.Configuration }),
            };
            var bodies = Bodies(settings.Instances);
            var results = new List<Result>();
            foreach (var (name, storeSettings) in stores)
            {
                Console.WriteLine($"{name}: {settings.Concurrency} clients, {settings.Instances} instances per request, {settings.Warmup.TotalSeconds:0} s warm-up, {settings.Duration.TotalSeconds:0} s measured");
                var environment = new Dictionary<string, string>(storeSettings, StringComparer.Ordinal)
                {
                    ["ASPNETCORE_ENVIRONMENT"] = "Production",
                    ["DOTNET_ENVIRONMENT"] = "Production",
                    ["ModelRepository__Path"] = models,
                    ["ModelRepository__Provider"] = "Cpu",
                    ["ModelRepository__Only__0"] = "ranking",
                    ["Serilog__MinimumLevel__Default"] = "Warning",
                };
                await using var server = await ServerProcess.StartAsync($"the service on {name}", service, [], environment, TimeSpan.FromMinutes(2), cancellationToken);
                results.Add(await MeasureAsync(name, server.BaseAddress, bodies, settings, cancellationToken));
            }

            var report = Report(results, settings);
            Console.WriteLine();
            Console.WriteLine(report);
            var output = Path.Combine(root, "benchmark-results");
            Directory.CreateDirectory(output);
            await File.WriteAllTextAsync(Path.Combine(output, "feature-stores.md"), report, cancellationToken);
            Console.WriteLine($"Written to {Path.Combine(output, "feature-stores.md")}");
            return results.All(r => r.Errors == 0) ? 0 : 1;
        }
        finally
        {
            await redis.DisposeAsync();
            await postgres.DisposeAsync();
            Directory.Delete(data, recursive: true);
        }
    }

    private static async Task<Result> MeasureAsync(string store, Uri baseAddress, List<byte[]> bodies, Settings settings, CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = settings.Concurrency, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        using var client = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var predict = new Uri("v1/models/ranking/predict", UriKind.Relative);
        var clock = Stopwatch.StartNew();
        var measureFrom = settings.Warmup;
        var measureTo = settings.Warmup + settings.Duration;
        var workers = Enumerable.Range(0, settings.Concurrency).Select(worker => Task.Run(async () =>
        {
            var samples = new List<(double LatencyMs, double FetchMs)>();
            var errors = 0;
            for (var i = worker; clock.Elapsed < measureTo; i += settings.Concurrency)
            {
                var started = clock.Elapsed;
                using var content = new ByteArrayContent(bodies[i % bodies.Count]);
                content.Headers.ContentType = new("application/json");
                using var response = await client.PostAsync(predict, content, cancellationToken);
                var text = await response.Content.ReadAsByteArrayAsync(cancellationToken);
                var took = clock.Elapsed - started;
                if (started < measureFrom)
                {
                    continue;
                }

                if (response.StatusCode != HttpStatusCode.OK)
                {
                    errors++;
                    continue;
                }

                using var json = JsonDocument.Parse(text);
                samples.Add((took.TotalMilliseconds, json.RootElement.GetProperty("timings").GetProperty("fetchMs").GetDouble()));
            }

            return (samples, errors);
        }, cancellationToken)).ToList();
        var done = await Task.WhenAll(workers);
        var all = done.SelectMany(d => d.samples).ToList();
        var fetch = all.Select(s => s.FetchMs).Order().ToList();
        var latency = all.Select(s => s.LatencyMs).Order().ToList();
        return new Result(
            store,
            all.Count / settings.Duration.TotalSeconds,
            all.Count * settings.Instances / settings.Duration.TotalSeconds,
            fetch.Count == 0 ? double.NaN : fetch.Average(),
            Percentile(fetch, 0.5),
            Percentile(fetch, 0.99),
            Percentile(latency, 0.5),
            Percentile(latency, 0.99),
            done.Sum(d => d.errors));
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>Ranking requests as a feed sends them: one user, <paramref name="instances"/> candidate items.</summary>
    private static List<byte[]> Bodies(int instances)
    {
        var random = new Random(17);
        return [.. Enumerable.Range(0, 256).Select(_ =>
        {
            var user = $"u{random.Next(1, 2001):D4}";
            var rows = Enumerable.Range(0, instances).Select(_ => new Dictionary<string, string> { ["user_id"] = user, ["item_id"] = $"i{random.Next(1, 501):D4}" });
            return JsonSerializer.SerializeToUtf8Bytes(new { instances = rows });
        })];
    }

    private static string Report(IReadOnlyList<Result> results, Settings settings)
    {
        var text = new StringBuilder();
        text.AppendLine("# ranking with features from SQLite, PostgreSQL and Redis");
        text.AppendLine();
        text.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, {settings.Concurrency} clients over loopback, " +
            $"{settings.Instances} instances (one user, {settings.Instances} items) per request, {settings.Duration.TotalSeconds:0} s measured after {settings.Warmup.TotalSeconds:0} s warm-up per store. ") +
            "Fetch: the service's own timings.fetchMs (the whole feature fetch of a request: one store call).");
        text.AppendLine();
        text.AppendLine("| store | requests/s | predictions/s | fetch mean ms | fetch p50 ms | fetch p99 ms | latency p50 ms | latency p99 ms | errors |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Store} | {r.RequestsPerSecond:F0} | {r.PredictionsPerSecond:F0} | {r.FetchMeanMs:F3} | {r.FetchP50Ms:F3} | {r.FetchP99Ms:F3} | {r.LatencyP50Ms:F2} | {r.LatencyP99Ms:F2} | {r.Errors} |");
        }

        return text.ToString();
    }

    private static async Task ImportAsync(string mhs, string models, IReadOnlyList<string> store, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(DotnetHost.Path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in (string[])[mhs, "features", "import", models, .. store, "--replace"])
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("mhs did not start.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"mhs features import failed ({process.ExitCode}): {await output}{await error}");
        }

        Console.Write(await output);
    }

    /// <summary>The mhs built beside the service (the service's build builds it first).</summary>
    private static string Mhs(string root)
    {
        var configuration = typeof(FeatureStoreBenchmark).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        var path = Path.Combine(root, "src", "MultiHeadServe.Cli", "bin", configuration, "net10.0", "mhs.dll");
        return File.Exists(path) ? path : throw new InvalidOperationException($"mhs is not built ({path}); build the benchmark first.");
    }

    private sealed record Result(
        string Store, double RequestsPerSecond, double PredictionsPerSecond, double FetchMeanMs, double FetchP50Ms, double FetchP99Ms,
        double LatencyP50Ms, double LatencyP99Ms, int Errors);

    private sealed record Settings(TimeSpan Duration, TimeSpan Warmup, int Concurrency, int Instances, string? Service)
    {
        public static Settings Parse(IReadOnlyList<string> args)
        {
            var settings = new Settings(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2), 8, 32, null);
            for (var i = 0; i < args.Count; i++)
            {
                var value = i + 1 < args.Count ? args[i + 1] : throw new UsageException($"{args[i]} needs a value.\n{Usage}");
                settings = args[i] switch
                {
                    "--duration" => settings with { Duration = TimeSpan.FromSeconds(Number(value, args[i])) },
                    "--warmup" => settings with { Warmup = TimeSpan.FromSeconds(Number(value, args[i])) },
                    "--concurrency" => settings with { Concurrency = (int)Number(value, args[i]) },
                    "--instances" => settings with { Instances = (int)Number(value, args[i]) },
                    "--service" => settings with { Service = value },
                    _ => throw new UsageException($"Unknown option {args[i]}.\n{Usage}"),
                };
                i++;
            }

            return settings;
        }

        private static double Number(string text, string option) =>
            double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0
                ? value
                : throw new UsageException($"{option} needs a positive number, not '{text}'.");
    }
}
