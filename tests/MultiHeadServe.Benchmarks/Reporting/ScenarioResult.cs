using System.Text.Json.Serialization;

namespace MultiHeadServe.Benchmarks.Reporting;

/// <summary>
/// One row of the table: a scenario, for one model, at one concurrency. A prediction is every head's output for
/// one input row: one call for a multi-head model, x calls for the old way, one row of a batch for the raw engine.
/// Server figures are null where they do not apply (the raw engine, the floor, which has no metrics).
/// </summary>
internal sealed record ScenarioResult
{
    public required string Model { get; init; }

    [JsonConverter(typeof(JsonStringEnumConverter<Scenarios>))]
    public required Scenarios Kind { get; init; }

    /// <summary>As printed, e.g. "b. multi-head, batching on".</summary>
    public required string Label { get; init; }

    /// <summary>Concurrent clients (the raw engine: one caller).</summary>
    public required int Concurrency { get; init; }

    /// <summary>HTTP calls per prediction: 1, or x for the old way; 0 for the raw engine.</summary>
    public int CallsPerPrediction { get; init; } = 1;

    /// <summary>The model names (or route) the calls went to.</summary>
    public IReadOnlyList<string> Targets { get; init; } = [];

    /// <summary>Raw engine: rows per run.</summary>
    public int? BatchSize { get; init; }

    public required long Predictions { get; init; }

    public required double Seconds { get; init; }

    /// <summary>Predictions per second (raw engine: rows per second).</summary>
    public required double PredictionsPerSecond { get; init; }

    /// <summary>Predictions per second of each round, in order (one entry when the scenario ran in one window).</summary>
    public IReadOnlyList<double> RoundPredictionsPerSecond { get; init; } = [];

    /// <summary>Latency of a prediction as the client saw it (raw engine: of one run of the whole batch).</summary>
    public required double P50Milliseconds { get; init; }

    public required double P90Milliseconds { get; init; }

    public required double P99Milliseconds { get; init; }

    public required double MeanMilliseconds { get; init; }

    public required double MaxMilliseconds { get; init; }

    public long Errors { get; init; }

    public string? FirstError { get; init; }

    /// <summary>CPU time of the server process per prediction, read from outside (raw engine: this process).</summary>
    public double? ServerCpuMillisecondsPerPrediction { get; init; }

    /// <summary>Server CPU as a share of the machine over the window (1 = every core busy).</summary>
    public double? ServerCpuShare { get; init; }

    /// <summary>CPU time of the load generator per prediction: it shares the machine with the server.</summary>
    public double? ClientCpuMillisecondsPerPrediction { get; init; }

    public double? FeatureFetchesPerPrediction { get; init; }

    /// <summary>Mean time of one feature fetch in the window (mhs_feature_fetch_ms): decode or store lookups.</summary>
    public double? MeanFetchMilliseconds { get; init; }

    public double? SessionRunsPerPrediction { get; init; }

    /// <summary>Mean rows per session run (mhs_batch_rows).</summary>
    public double? MeanBatchRows { get; init; }

    /// <summary>Mean session run time in the window (mhs_inference_ms).</summary>
    public double? MeanRunMilliseconds { get; init; }

    /// <summary>Managed bytes the server allocated per prediction, steady state.</summary>
    public double? AllocatedBytesPerPrediction { get; init; }

    /// <summary>Managed bytes the server allocated per HTTP call (differs from per prediction for the old way).</summary>
    public double? AllocatedBytesPerRequest { get; init; }

    /// <summary>
    /// CPU that processes other than the benchmark and the measured server used during the window, as a share of
    /// the machine: 0 on a quiet machine.
    /// </summary>
    public double? OtherCpuShare { get; init; }

    /// <summary>The one-minute load average when the window ended.</summary>
    public double? LoadAverage { get; init; }
}
