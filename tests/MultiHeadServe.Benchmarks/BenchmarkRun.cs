using System.Diagnostics;
using System.Globalization;
using MultiHeadServe.Benchmarks.Hosting;
using MultiHeadServe.Benchmarks.Load;
using MultiHeadServe.Benchmarks.Metrics;
using MultiHeadServe.Benchmarks.Models;
using MultiHeadServe.Benchmarks.Raw;
using MultiHeadServe.Benchmarks.Reporting;

namespace MultiHeadServe.Benchmarks;

/// <summary>
/// One benchmark run: the raw engine sweep in process, then the service and the HTTP floor as child processes
/// driven over loopback, then one table, results.json and a chart.
/// </summary>
internal sealed class BenchmarkRun(BenchmarkOptions options, TextWriter output, TextWriter progress)
{
    private const string SeparateApisClient =
        "The client issues a prediction's x calls concurrently and the prediction completes when the last answer is in: " +
        "what a latency-minded client of the old APIs does, and the old way's best case (x calls in flight per client).";

    private static readonly TimeSpan ServiceReadyTimeout = TimeSpan.FromMinutes(3);

    /// <summary>The batch at which one head through its pruned graph is compared with the whole graph.</summary>
    private const int PrunedBatchSize = 64;

    /// <summary>The batch sizes at which the fused graph is compared with its members.</summary>
    private static readonly int[] FusionBatchSizes = [1, 8];

    private static readonly TimeSpan ProcessWarmup = TimeSpan.FromSeconds(6);

    /// <summary>Warm-up before every round after the first: the connections and the server settle on the new endpoint.</summary>
    private static readonly TimeSpan RoundWarmup = TimeSpan.FromSeconds(1);

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        var wall = Stopwatch.StartNew();
        var root = RepositoryRoot.Find();
        var modelsDirectory = Path.GetFullPath(options.ModelsDirectory ?? Path.Combine(root, "models"));
        var models = options.Models.Select(name => BenchmarkModel.Load(modelsDirectory, name)).ToList();
        await using var machine = new MachineMonitor();
        progress.WriteLine(Estimate());

        var results = new List<ScenarioResult>();
        var sweeps = new List<RawSweep>();
        var pruned = new List<PrunedHeadResult>();
        var fusions = new List<FusionResult>();
        if (options.Scenarios.HasFlag(Scenarios.Raw))
        {
            progress.WriteLine("a. raw ONNX Runtime, in process:");
            foreach (var model in models)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var sweep = RawOnnxBenchmark.Run(model, options.BatchSizes, options.RawDuration, options.Cuda, progress.WriteLine);
                sweeps.Add(sweep);
                if (PrunedHeadBenchmark.Run(model, PrunedBatchSize, options.RawDuration * 2, progress.WriteLine) is { } prunedHead)
                {
                    pruned.Add(prunedHead);
                }

                fusions.AddRange(FusionBenchmark.Run(model, FusionBatchSizes, options.RawDuration * 3, options.Cuda, progress.WriteLine));
                results.AddRange(RawRows(sweep));
            }
        }

        IReadOnlyList<ModelDeployments> deployments = [];
        if ((options.Scenarios & ~Scenarios.Raw) != Scenarios.None)
        {
            using var repository = BenchmarkRepository.Create(models, options.KeepRepository);
            if (options.KeepRepository)
            {
                progress.WriteLine($"Model repository kept at {repository.ModelsPath}");
            }

            deployments = repository.Models;
            results.AddRange(await RunServedScenariosAsync(repository, root, cancellationToken));
        }

        var ordered = results
            .OrderBy(r => options.Models.ToList().IndexOf(r.Model))
            .ThenBy(r => r.Kind == Scenarios.Raw ? 0 : 1)
            .ThenBy(r => r.Concurrency)
            .ThenBy(r => (int)r.Kind)
            .ToList();
        var acceptance = Acceptance.Evaluate(ordered,
            [.. models.Select(m => new AcceptanceModel(m.Name, deployments.FirstOrDefault(d => d.Model == m)?.SingleHead.Count ?? 0, m.MaxQueueDelayMicroseconds))], sweeps, pruned, fusions);
        var machineReport = machine.Report();
        List<string> notes = options.ServiceEnvironment.Count == 0
            ? []
            : [$"NOT the service's defaults: this run set {string.Join(", ", options.ServiceEnvironment.Select(e => $"{e.Key}={e.Value}"))}."];
        var table = ResultTable.Render(ordered, acceptance, machineReport, options.Duration, options.Warmup, notes);
        output.WriteLine();
        output.Write(table);

        var report = new BenchmarkReport(started, wall.Elapsed.TotalSeconds, Settings(), machineReport,
            [.. models.Select(m => ModelReportOf(m, deployments.FirstOrDefault(d => d.Model == m)))],
            [.. sweeps.Select(SweepReportOf)], ordered, acceptance);
        var directory = WriteResults(root, started, report, table);
        output.WriteLine();
        var shown = directory.StartsWith(root, StringComparison.Ordinal) ? Path.GetRelativePath(root, directory) : directory;
        output.WriteLine($"Results: {shown}{Path.DirectorySeparatorChar} (results.txt, results.json, results.svg)");
        return ordered.Any(r => r.Errors > 0) ? 1 : 0;
    }

    private async Task<List<ScenarioResult>> RunServedScenariosAsync(BenchmarkRepository repository, string root, CancellationToken cancellationToken)
    {
        var serviceAssembly = ServiceAssembly.Locate(options.ServiceAssembly, root);
        progress.WriteLine($"Starting the service ({repository.Models.Sum(m => 2 + m.SingleHead.Count)} models) ...");
        await using var service = await ServerProcess.StartAsync("the service", serviceAssembly, [],
            ServiceEnvironment(repository.ModelsPath, repository.FeatureStorePath), ServiceReadyTimeout, cancellationToken);
        await using var floor = (options.Scenarios & (Scenarios.HttpFloor | Scenarios.Health)) != Scenarios.None
            ? await ServerProcess.StartAsync("the HTTP floor", typeof(BenchmarkRun).Assembly.Location, [HttpFloor.Command],
                ProductionEnvironment, TimeSpan.FromMinutes(1), cancellationToken)
            : null;
        await using var baseline = options.BaselineAssembly is { } baselineAssembly
            ? await ServerProcess.StartAsync("the baseline build", ServiceAssembly.Locate(baselineAssembly, root), [],
                ServiceEnvironment(repository.ModelsPath, repository.FeatureStorePath + ".baseline"), ServiceReadyTimeout, cancellationToken)
            : null;
        // The plain endpoints read the SQLite file the service seeded at start-up: started after it.
        await using var plain = await PlainProcesses.StartAsync(repository, options.Scenarios, ProductionEnvironment, options.Cuda, progress, cancellationToken);
        using var load = new LoadGenerator();
        // Every server figure comes from /metrics: fail now, not after minutes of load, if it cannot be read.
        _ = await MetricsSnapshot.ScrapeAsync(load.Client, service.BaseAddress, cancellationToken);

        var plans = repository.Models.Select((deployment, i) => (deployment.Model, Scenarios: ScenariosOf(deployment, service, floor, baseline, plain, healthToo: i == 0))).ToList();
        await WarmUpAsync(plans, load, cancellationToken);
        await PlainProcesses.CheckSameHeadsAsync(plans.Select(p => p.Model).ToList(), service, plain, load.Client, cancellationToken);

        var results = new List<ScenarioResult>();
        var roundDuration = options.Duration / options.Rounds;
        foreach (var (model, scenarios) in plans)
        {
            foreach (var concurrency in options.Concurrency)
            {
                // The scenarios take turns round by round: whatever else the machine does meanwhile falls on all of them.
                // Each round starts one scenario further on, so no scenario always holds the same place in the order
                // (an A/A run, this build as its own baseline, measured 0.95x while the baseline always ran third).
                var windows = scenarios.ToDictionary(s => s, _ => new List<MeasuredWindow>());
                for (var round = 0; round < options.Rounds; round++)
                {
                    foreach (var scenario in scenarios.Skip(round % scenarios.Count).Concat(scenarios.Take(round % scenarios.Count)))
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var warmup = round == 0 ? options.Warmup : TimeSpan.FromTicks(Math.Min(options.Warmup.Ticks, RoundWarmup.Ticks));
                        windows[scenario].Add(await MeasureAsync(model, scenario, concurrency, load, warmup, roundDuration, cancellationToken));
                    }
                }

                foreach (var scenario in scenarios)
                {
                    var result = MeasuredWindow.Combine(windows[scenario]);
                    progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {model.Name,-10} {scenario.Label,-32} {concurrency,3} clients: {result.PredictionsPerSecond,8:0} pred/s " +
                        $"(rounds {string.Join(", ", result.RoundPredictionsPerSecond.Select(r => r.ToString("0", CultureInfo.InvariantCulture)))}), " +
                        $"p50 {result.P50Milliseconds,7:0.00} ms, p99 {result.P99Milliseconds,7:0.00} ms{(result.Errors > 0 ? $", {result.Errors} ERRORS" : "")}"));
                    results.Add(result);
                }
            }
        }

        return results;
    }

    /// <summary>
    /// Load on every endpoint before anything is measured: a freshly started .NET process spends its first seconds
    /// compiling hot methods again (tiered JIT), which would be charged to whichever scenario came first.
    /// </summary>
    private async Task WarmUpAsync(IReadOnlyList<(BenchmarkModel Model, List<ServedScenario> Scenarios)> plans, LoadGenerator load, CancellationToken cancellationToken)
    {
        progress.WriteLine($"Warming up every endpoint for {ProcessWarmup.TotalSeconds:0} s per model (not measured) ...");
        foreach (var (model, scenarios) in plans)
        {
            foreach (var group in scenarios.GroupBy(s => s.Bodies ?? model.Bodies))
            {
                var targets = group.SelectMany(s => s.Targets).ToList();
                foreach (var target in targets)
                {
                    await load.ProbeAsync(target.Uri, group.Key[0], target.ExpectedHeads, cancellationToken);
                }

                var plan = new LoadPlan(options.Concurrency.Max(), [.. targets.Select(t => t.Uri)], group.Key, TimeSpan.Zero, ProcessWarmup / 2, long.MaxValue);
                var window = await load.RunAsync(plan, _ => Task.CompletedTask, _ => Task.CompletedTask, cancellationToken);
                if (window.Errors > 0)
                {
                    throw new InvalidOperationException($"Warming up {model.Name} failed {window.Errors} time(s); first: {window.FirstError}");
                }
            }
        }
    }

    private List<ServedScenario> ScenariosOf(
        ModelDeployments deployment, ServerProcess service, ServerProcess? floor, ServerProcess? baseline, PlainProcesses plain, bool healthToo)
    {
        var model = deployment.Model;
        var heads = model.ServedHeads.Select(h => h.Name).ToList();
        var scenarios = new List<ServedScenario>();
        if (options.Scenarios.HasFlag(Scenarios.MultiHead))
        {
            scenarios.Add(new(Scenarios.MultiHead, "b. multi-head, batching on", service, true, [Predict(service, deployment.MultiHead, heads)]));
        }

        if (baseline is not null)
        {
            scenarios.Add(new(Scenarios.Baseline, "e. multi-head, baseline build", baseline, true, [Predict(baseline, deployment.MultiHead, heads)]));
        }

        if (options.Scenarios.HasFlag(Scenarios.MultiHeadUnbatched))
        {
            scenarios.Add(new(Scenarios.MultiHeadUnbatched, "b. multi-head, batching off", service, true, [Predict(service, deployment.Unbatched, heads)]));
        }

        if (options.Scenarios.HasFlag(Scenarios.SeparateApis))
        {
            var apis = deployment.SingleHead.Select(d => plain.Of(d.Name)).ToList();
            scenarios.Add(new(Scenarios.SeparateApis, $"c. {deployment.SingleHead.Count} plain single-model APIs", apis, false,
                [.. deployment.SingleHead.Select((d, i) => new ScenarioTarget(d.Name, new Uri(apis[i].BaseAddress, PlainEndpoint.Route.TrimStart('/')), d.Heads))]));
        }

        if (options.Scenarios.HasFlag(Scenarios.Plain))
        {
            var endpoint = plain.Of(deployment.MultiHead);
            scenarios.Add(new(Scenarios.Plain, "f. plain endpoint", endpoint, false,
                [new ScenarioTarget(deployment.MultiHead, new Uri(endpoint.BaseAddress, PlainEndpoint.Route.TrimStart('/')), heads)]));
        }

        if (healthToo && floor is not null && options.Scenarios.HasFlag(Scenarios.Health))
        {
            scenarios.Add(new(Scenarios.Health, "g. service /healthz", service, false, [new ScenarioTarget("healthz", new Uri(service.BaseAddress, "healthz"), [])], NoBody));
            scenarios.Add(new(Scenarios.HealthFloor, "g. floor GET (empty endpoint)", floor, false,
                [new ScenarioTarget(HttpFloor.Route, new Uri(floor.BaseAddress, HttpFloor.Route.TrimStart('/')), [])], NoBody));
        }

        if (floor is not null && options.Scenarios.HasFlag(Scenarios.HttpFloor))
        {
            scenarios.Add(new(Scenarios.HttpFloor, "d. HTTP floor (empty endpoint)", floor, false,
                [new ScenarioTarget(HttpFloor.Route, new Uri(floor.BaseAddress, HttpFloor.Route.TrimStart('/')), [])]));
        }

        return scenarios;
    }

    private async Task<MeasuredWindow> MeasureAsync(
        BenchmarkModel model, ServedScenario scenario, int concurrency, LoadGenerator load, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken)
    {
        foreach (var target in scenario.Targets)
        {
            await load.ProbeAsync(target.Uri, (scenario.Bodies ?? model.Bodies)[0], target.ExpectedHeads, cancellationToken);
        }

        var server = scenario.Servers[0];
        MetricsSnapshot? before = null;
        MetricsSnapshot? after = null;
        TimeSpan serverCpuBefore = default, serverCpuAfter = default, clientCpuBefore = default, clientCpuAfter = default;
        TimeSpan? machineBefore = null, machineAfter = null;
        var plan = new LoadPlan(concurrency, [.. scenario.Targets.Select(t => t.Uri)], scenario.Bodies ?? model.Bodies, warmup, duration, options.MaxPredictions);
        var window = await load.RunAsync(plan,
            async token =>
            {
                // Scrape first, then read CPU: the scrape's own cost stays outside the window.
                before = scenario.HasMetrics ? await MetricsSnapshot.ScrapeAsync(load.Client, server.BaseAddress, token) : null;
                serverCpuBefore = scenario.CpuTime;
                clientCpuBefore = Environment.CpuUsage.TotalTime;
                machineBefore = MachineMonitor.MachineBusyTime();
            },
            async token =>
            {
                machineAfter = MachineMonitor.MachineBusyTime();
                serverCpuAfter = scenario.CpuTime;
                clientCpuAfter = Environment.CpuUsage.TotalTime;
                after = scenario.HasMetrics ? await MetricsSnapshot.ScrapeAsync(load.Client, server.BaseAddress, token) : null;
            },
            cancellationToken);

        var predictions = window.Latencies.Count;
        var calls = scenario.Targets.Count;
        var activity = before is not null && after is not null
            ? ServerActivity.Between(before, after, scenario.Targets.Select(t => t.Name).ToHashSet(StringComparer.Ordinal))
            : null;
        // Server counters are divided by the server's own count of calls between the same two scrapes: calls in flight
        // at either scrape are as many at the start as at the end, so the ratios hold exactly at steady state.
        // CPU is read from outside right at the window's edges and divided by the client's count.
        var served = activity is { Requests: > 0 } ? activity.Requests / calls : (double?)null;
        var runs = activity is { SessionRuns: > 0 } ? activity.SessionRuns : (double?)null;
        return new MeasuredWindow(new ScenarioResult
        {
            Model = model.Name,
            Kind = scenario.Kind,
            Label = scenario.Label,
            Concurrency = concurrency,
            CallsPerPrediction = calls,
            Targets = [.. scenario.Targets.Select(t => t.Name)],
            Predictions = predictions,
            Seconds = window.Elapsed.TotalSeconds,
            PredictionsPerSecond = window.PredictionsPerSecond,
            P50Milliseconds = window.Latencies.Percentile(50),
            P90Milliseconds = window.Latencies.Percentile(90),
            P99Milliseconds = window.Latencies.Percentile(99),
            MeanMilliseconds = window.Latencies.Mean,
            MaxMilliseconds = window.Latencies.Max,
            Errors = window.Errors,
            FirstError = window.FirstError,
            ServerCpuMillisecondsPerPrediction = predictions > 0 ? (serverCpuAfter - serverCpuBefore).TotalMilliseconds / predictions : null,
            ServerCpuShare = (serverCpuAfter - serverCpuBefore).TotalSeconds / (window.Elapsed.TotalSeconds * Environment.ProcessorCount),
            ClientCpuMillisecondsPerPrediction = predictions > 0 ? (clientCpuAfter - clientCpuBefore).TotalMilliseconds / predictions : null,
            FeatureFetchesPerPrediction = activity?.FeatureFetches / served,
            MeanFetchMilliseconds = activity is { FeatureFetches: > 0 } ? activity.FetchMilliseconds / activity.FeatureFetches : null,
            SessionRunsPerPrediction = activity?.SessionRuns / served,
            MeanBatchRows = activity?.BatchRows / runs,
            MeanRunMilliseconds = activity?.InferenceMilliseconds / runs,
            AllocatedBytesPerPrediction = activity?.AllocatedBytes / served,
            AllocatedBytesPerRequest = activity is { Requests: > 0 } ? activity.AllocatedBytes / activity.Requests : null,
            OtherCpuShare = OtherCpuShare(machineAfter - machineBefore, serverCpuAfter - serverCpuBefore + (clientCpuAfter - clientCpuBefore), window.Elapsed),
            LoadAverage = MachineMonitor.LoadAverageNow(),
        }, window.Latencies);
    }

    /// <summary>The machine's busy time less the benchmark's own, as a share of every core over the window.</summary>
    private static double? OtherCpuShare(TimeSpan? machineBusy, TimeSpan own, TimeSpan elapsed) =>
        machineBusy is { } busy ? Math.Max(0, (busy - own).TotalSeconds) / (elapsed.TotalSeconds * Environment.ProcessorCount) : null;

    private static ScenarioTarget Predict(ServerProcess service, string model, IReadOnlyList<string> heads) =>
        new(model, new Uri(service.BaseAddress, $"v1/models/{model}/predict"), heads);

    private static IEnumerable<ScenarioResult> RawRows(RawSweep sweep)
    {
        var first = sweep.BestSingleRow ?? sweep.Batches[0];
        yield return RawRow(sweep.Model, first, $"a. raw ORT, batch {first.BatchSize}, {first.Layout}");
        if (sweep.Best != first)
        {
            yield return RawRow(sweep.Model, sweep.Best, $"a. raw ORT, best batch ({sweep.Best.BatchSize}), {sweep.Best.Layout}");
        }
    }

    private static ScenarioResult RawRow(string model, RawBatchResult batch, string label) => new()
    {
        Model = model,
        Kind = Scenarios.Raw,
        Label = label,
        Concurrency = batch.Layout.Callers,
        CallsPerPrediction = 0,
        BatchSize = batch.BatchSize,
        Predictions = batch.Runs * batch.BatchSize,
        Seconds = batch.Elapsed.TotalSeconds,
        PredictionsPerSecond = batch.RowsPerSecond,
        P50Milliseconds = batch.RunLatencies.Percentile(50),
        P90Milliseconds = batch.RunLatencies.Percentile(90),
        P99Milliseconds = batch.RunLatencies.Percentile(99),
        MeanMilliseconds = batch.RunLatencies.Mean,
        MaxMilliseconds = batch.RunLatencies.Max,
        ServerCpuMillisecondsPerPrediction = batch.CpuMillisecondsPerRow,
        SessionRunsPerPrediction = 1.0 / batch.BatchSize,
        MeanBatchRows = batch.BatchSize,
        MeanRunMilliseconds = batch.RunLatencies.Mean,
        OtherCpuShare = batch.OtherCpuShare,
    };

    /// <summary>The service as the issue specifies it for the run: CPU, its own repository and store, warnings only.</summary>
    private Dictionary<string, string> ServiceEnvironment(string modelsPath, string featureStorePath)
    {
        var environment = new Dictionary<string, string>(ProductionEnvironment, StringComparer.Ordinal)
        {
            ["ModelRepository__Path"] = modelsPath,
            ["ModelRepository__Provider"] = options.Cuda ? "Cuda" : "Cpu",
            ["FeatureStore__SqlitePath"] = featureStorePath,
            // One log line per request would measure the console, not the service.
            ["Serilog__MinimumLevel__Default"] = "Warning",
        };
        foreach (var (name, value) in options.ServiceEnvironment)
        {
            environment[name] = value;
        }

        return environment;
    }

    private static Dictionary<string, string> ProductionEnvironment { get; } = new(StringComparer.Ordinal)
    {
        ["ASPNETCORE_ENVIRONMENT"] = "Production",
        ["DOTNET_ENVIRONMENT"] = "Production",
    };

    private string Estimate()
    {
        var served = 0;
        foreach (var kind in new[] { Scenarios.MultiHead, Scenarios.MultiHeadUnbatched, Scenarios.SeparateApis, Scenarios.HttpFloor })
        {
            served += options.Scenarios.HasFlag(kind) ? 1 : 0;
        }

        var seconds = options.Models.Count * ((served > 0 ? ProcessWarmup.TotalSeconds : 0) + served * options.Concurrency.Count *
            (options.Warmup + options.Duration + (options.Rounds - 1) * TimeSpan.FromTicks(Math.Min(options.Warmup.Ticks, RoundWarmup.Ticks))).TotalSeconds +
            (options.Scenarios.HasFlag(Scenarios.Raw) ? ThreadLayout.For(Environment.ProcessorCount).Count * options.BatchSizes.Count * (options.RawDuration.TotalSeconds + 0.5) : 0));
        return string.Create(CultureInfo.InvariantCulture,
            $"Benchmark: {string.Join(", ", options.Models)}; about {Math.Ceiling(seconds / 60)} min of load plus start-up.");
    }

    private RunSettings Settings() => new(
        options.Duration.TotalSeconds,
        options.Warmup.TotalSeconds,
        options.Rounds,
        options.Concurrency,
        options.Models,
        options.Scenarios.ToString(),
        options.BatchSizes,
        options.RawDuration.TotalSeconds,
        options.MaxPredictions,
        ServiceEnvironment("<temporary repository>", "<temporary folder>/features.db"),
        SeparateApisClient);

    private static ModelReport ModelReportOf(BenchmarkModel model, ModelDeployments? deployments) => new(
        model.Name,
        model.Version,
        model.FeatureSource,
        [.. model.ServedHeads.Select(h => h.Name)],
        model.Members,
        model.MaxBatchSize,
        model.MaxQueueDelayMicroseconds,
        model.Bodies.Count,
        model.Bodies.Average(b => b.Length),
        deployments?.MultiHead,
        deployments?.Unbatched,
        [.. (deployments?.SingleHead ?? []).Select(d => new SingleHeadReport(d.Name, d.Heads, d.Origin))]);

    private static RawSweepReport SweepReportOf(RawSweep sweep) => new(
        sweep.Model,
        sweep.SessionSource,
        [.. sweep.Batches.Select(b => new RawBatchReport(b.Layout.ToString(), b.Layout.IntraOpThreads, b.Layout.Callers, b.BatchSize, b.Runs, b.RowsPerSecond,
            b.RunLatencies.Percentile(50), b.RunLatencies.Percentile(99), b.CpuMillisecondsPerRow, b.OtherCpuShare))]);

    private string WriteResults(string root, DateTimeOffset started, BenchmarkReport report, string table)
    {
        var directory = Path.Combine(Path.GetFullPath(options.OutputDirectory ?? Path.Combine(root, "benchmark-results")),
            started.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "results.txt"), table);
        File.WriteAllText(Path.Combine(directory, "results.json"), report.ToJson());
        var subtitle = string.Create(CultureInfo.InvariantCulture,
            $"{started:yyyy-MM-dd HH:mm} UTC, {report.Machine.Cores} cores, {options.Duration.TotalSeconds:0.#} s per scenario, " +
            $"load average before the run {report.Machine.LoadAverageBefore?.ToString("0.00", CultureInfo.InvariantCulture) ?? "n/a"}");
        File.WriteAllText(Path.Combine(directory, "results.svg"), ResultChart.Render(report.Scenarios, subtitle));
        return directory;
    }

    /// <summary>A GET with no body (health and the floor's GET).</summary>
    private static readonly IReadOnlyList<byte[]> NoBody = [[]];

    /// <summary>A served scenario: the calls one prediction makes, on the service, the floor or the plain endpoints.</summary>
    /// <param name="Kind">Which scenario.</param>
    /// <param name="Label">Its row label.</param>
    /// <param name="Servers">The processes whose CPU it uses.</param>
    /// <param name="HasMetrics">The (first) server has the service's /metrics.</param>
    /// <param name="Targets">One call per target makes a prediction.</param>
    /// <param name="Bodies">What is sent; null: the model's request bodies.</param>
    private sealed record ServedScenario(
        Scenarios Kind, string Label, IReadOnlyList<ServerProcess> Servers, bool HasMetrics, IReadOnlyList<ScenarioTarget> Targets, IReadOnlyList<byte[]>? Bodies = null)
    {
        public ServedScenario(Scenarios kind, string label, ServerProcess server, bool hasMetrics, IReadOnlyList<ScenarioTarget> targets, IReadOnlyList<byte[]>? bodies = null)
            : this(kind, label, [server], hasMetrics, targets, bodies)
        {
        }

        /// <summary>The CPU every server of the scenario has used (x processes for the plain single-model APIs).</summary>
        public TimeSpan CpuTime => Servers.Aggregate(TimeSpan.Zero, (total, s) => total + s.CpuTime);
    }

    /// <summary>One call of a prediction and the heads its answer must carry.</summary>
    private sealed record ScenarioTarget(string Name, Uri Uri, IReadOnlyList<string> ExpectedHeads);
}

/// <summary>The repository root: the folder holding MultiHeadServe.sln, above the working folder or this executable.</summary>
internal static class RepositoryRoot
{
    public static string Find()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "MultiHeadServe.sln")))
                {
                    return directory.FullName;
                }
            }
        }

        return Directory.GetCurrentDirectory();
    }
}
