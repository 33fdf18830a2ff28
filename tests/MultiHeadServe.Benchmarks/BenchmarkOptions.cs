using System.Globalization;

namespace MultiHeadServe.Benchmarks;

/// <summary>The scenarios of one run. Letters follow the issue: a raw engine, b one multi-head call, c the old x calls, d the HTTP floor.</summary>
[Flags]
internal enum Scenarios
{
    None = 0,

    /// <summary>a. ONNX Runtime in process, no HTTP: a batch-size sweep.</summary>
    Raw = 1,

    /// <summary>b. One multi-head predict call, dynamic batching on (the model's shipped settings).</summary>
    MultiHead = 2,

    /// <summary>b. The same call with batching off.</summary>
    MultiHeadUnbatched = 4,

    /// <summary>c. x plain single-model APIs (the plain endpoint over one head's graph each, in processes of their own), one call each per prediction.</summary>
    SeparateApis = 8,

    /// <summary>d. An empty ASP.NET endpoint that reads and discards a body of the same size.</summary>
    HttpFloor = 16,

    /// <summary>f. The plain endpoint a team would write: one bare minimal API over the multi-head graph.</summary>
    Plain = 64,

    /// <summary>g. The service's /healthz, whose CPU per request is compared with the floor's.</summary>
    Health = 128,

    /// <summary>g. The floor's empty GET endpoint, what /healthz is compared with (measured with Health).</summary>
    HealthFloor = 256,

    All = Raw | MultiHead | MultiHeadUnbatched | SeparateApis | HttpFloor | Plain | Health,

    /// <summary>e. The multi-head call on another build of the service (--baseline), in the same rounds: before and after a change.</summary>
    Baseline = 32,
}

/// <summary>Command-line options; every figure has a default so the bare command reproduces the published run.</summary>
internal sealed record BenchmarkOptions
{
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(15);

    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Each scenario's measured time is split into this many rounds, and the scenarios of a model and concurrency
    /// take turns round by round, so drift on the machine (another tenant, a noisy neighbour) hits them alike.
    /// </summary>
    public int Rounds { get; init; } = 5;

    public IReadOnlyList<int> Concurrency { get; init; } = [16, 32];

    public IReadOnlyList<string> Models { get; init; } = ["shapes", "ranking"];

    public Scenarios Scenarios { get; init; } = Scenarios.All;

    /// <summary>Batch sizes of the raw sweep.</summary>
    public IReadOnlyList<int> BatchSizes { get; init; } = [1, 2, 4, 8, 16, 32, 64];

    /// <summary>Measured time per batch size of the raw sweep (after a short warm-up of its own).</summary>
    public TimeSpan RawDuration { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>A scenario also ends after this many measured predictions.</summary>
    public long MaxPredictions { get; init; } = 2_000_000;

    /// <summary>Where results go; null: benchmark-results/ at the repository root.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>The model repository the demo models are copied from; null: models/ at the repository root.</summary>
    public string? ModelsDirectory { get; init; }

    /// <summary>The service's MultiHeadServe.dll; null: the one built with this benchmark.</summary>
    public string? ServiceAssembly { get; init; }

    /// <summary>Another build's MultiHeadServe.dll whose multi-head call is measured in the same rounds (scenario e); null: none.</summary>
    public string? BaselineAssembly { get; init; }

    /// <summary>Run every session on CUDA (the service, the plain endpoints, the raw runs): for the GPU build on a GPU host.</summary>
    public bool Cuda { get; init; }

    /// <summary>Keep the temporary model repository (for inspecting what was served).</summary>
    public bool KeepRepository { get; init; }

    /// <summary>Extra environment for the service process (configuration experiments), applied after the run's own settings.</summary>
    public IReadOnlyDictionary<string, string> ServiceEnvironment { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    public const string Usage = """
        Usage: dotnet run -c Release --project tests/MultiHeadServe.Benchmarks -- [options]

          --duration <s>          measured seconds per scenario (default 15)
          --warmup <s>            warm-up seconds per scenario, not measured (default 3)
          --rounds <n>            measure each scenario in n rounds of duration/n, taking turns (default 5)
          --concurrency <n,..>    concurrent clients (default 16,32)
          --models <name,..>      models from the repository (default shapes,ranking)
          --scenarios <name,..>   raw, multihead, unbatched, separate, floor, plain, health, or a, b, c, d, f, g (default all)
          --out <dir>             results folder (default benchmark-results/ at the repository root)
          --batch-sizes <n,..>    raw sweep (default 1,2,4,8,16,32,64)
          --raw-duration <s>      measured seconds per raw batch size (default 2)
          --max-predictions <n>   also end a scenario after this many predictions (default 2000000)
          --models-dir <dir>      model repository to copy from (default models/ at the repository root)
          --service <dll>         the service to start (default: the MultiHeadServe.dll built with this benchmark)
          --baseline <dll>        also measure another build's multi-head call in the same rounds (e.g. the previous
                                  commit's MultiHeadServe.dll): before and after a change, from one run
          --provider cpu|cuda     where every session runs (default cpu; cuda needs the GPU build, -p:OnnxRuntimeGpu=true,
                                  and a GPU host)
          --keep-repository       keep the temporary model repository
          --service-env <K=V>     extra environment for the service, e.g. ModelRepository__IntraOpThreads=1 (repeatable)

        dotnet run -c Release --project tests/MultiHeadServe.Benchmarks -- protocols [options]
                                  the Open Inference Protocol's wires side by side: /v2 JSON data, /v2 binary data,
                                  gRPC raw contents (options: protocols --help)
        """;

    /// <exception cref="UsageException">An unknown option or a malformed value.</exception>
    public static BenchmarkOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchmarkOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value()
            {
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    throw new UsageException($"{name} needs a value.");
                }

                return args[++i];
            }

            options = name switch
            {
                "--duration" => options with { Duration = Seconds(name, Value()) },
                "--warmup" => options with { Warmup = Seconds(name, Value(), allowZero: true) },
                "--rounds" => options with { Rounds = Integers(name, Value()).Single() },
                "--concurrency" => options with { Concurrency = Integers(name, Value()) },
                "--models" => options with { Models = Names(name, Value()) },
                "--scenarios" => options with { Scenarios = ParseScenarios(Value()) },
                "--out" => options with { OutputDirectory = Value() },
                "--batch-sizes" => options with { BatchSizes = Integers(name, Value()) },
                "--raw-duration" => options with { RawDuration = Seconds(name, Value()) },
                "--max-predictions" => options with { MaxPredictions = Integers(name, Value()).Single() },
                "--models-dir" => options with { ModelsDirectory = Value() },
                "--service" => options with { ServiceAssembly = Value() },
                "--baseline" => options with { BaselineAssembly = Value() },
                "--keep-repository" => options with { KeepRepository = true },
                "--provider" => options with
                {
                    Cuda = Value().ToLowerInvariant() switch
                    {
                        "cpu" => false,
                        "cuda" => true,
                        var other => throw new UsageException($"--provider takes cpu or cuda; got '{other}'."),
                    },
                },
                "--service-env" => options with { ServiceEnvironment = WithSetting(options.ServiceEnvironment, Value()) },
                _ => throw new UsageException($"Unknown option '{name}'."),
            };
        }

        return options;
    }

    private static TimeSpan Seconds(string option, string value, bool allowZero = false)
    {
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) ||
            seconds < 0 || (!allowZero && seconds == 0) || seconds > 3600)
        {
            throw new UsageException($"{option} takes seconds{(allowZero ? " (0 or more)" : " (more than 0)")}, at most 3600; got '{value}'.");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    private static int[] Integers(string option, string value)
    {
        var parts = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var numbers = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out numbers[i]) || numbers[i] < 1)
            {
                throw new UsageException($"{option} takes positive whole numbers separated by commas; got '{value}'.");
            }
        }

        return numbers.Length > 0 ? [.. numbers.Distinct()] : throw new UsageException($"{option} needs at least one number.");
    }

    private static string[] Names(string option, string value)
    {
        var names = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return names.Length > 0 ? [.. names.Distinct(StringComparer.Ordinal)] : throw new UsageException($"{option} needs at least one name.");
    }

    private static Dictionary<string, string> WithSetting(IReadOnlyDictionary<string, string> settings, string value)
    {
        var equals = value.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0)
        {
            throw new UsageException($"--service-env takes NAME=value; got '{value}'.");
        }

        return new Dictionary<string, string>(settings, StringComparer.Ordinal) { [value[..equals]] = value[(equals + 1)..] };
    }

    private static Scenarios ParseScenarios(string value)
    {
        var scenarios = Scenarios.None;
        foreach (var name in Names("--scenarios", value))
        {
            scenarios |= name.ToLowerInvariant() switch
            {
                "a" or "raw" => Scenarios.Raw,
                "b" => Scenarios.MultiHead | Scenarios.MultiHeadUnbatched,
                "multihead" => Scenarios.MultiHead,
                "unbatched" => Scenarios.MultiHeadUnbatched,
                "c" or "separate" => Scenarios.SeparateApis,
                "d" or "floor" => Scenarios.HttpFloor,
                "f" or "plain" => Scenarios.Plain,
                "g" or "health" => Scenarios.Health,
                "all" => Scenarios.All,
                _ => throw new UsageException($"Unknown scenario '{name}': use raw, multihead, unbatched, separate, floor, plain, health (or a, b, c, d, f, g)."),
            };
        }

        return scenarios;
    }
}

/// <summary>The command line was wrong; the message says how.</summary>
internal sealed class UsageException(string message) : Exception(message);
