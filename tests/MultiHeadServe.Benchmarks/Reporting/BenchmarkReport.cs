using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MultiHeadServe.Benchmarks.Reporting;

/// <summary>Everything a run measured, as written to results.json.</summary>
internal sealed record BenchmarkReport(
    DateTimeOffset StartedAt,
    double WallSeconds,
    RunSettings Settings,
    MachineReport Machine,
    IReadOnlyList<ModelReport> Models,
    IReadOnlyList<RawSweepReport> RawSweeps,
    IReadOnlyList<ScenarioResult> Scenarios,
    IReadOnlyList<AcceptanceLine> Acceptance)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // A results file, never embedded in HTML: keep quotes and angle brackets readable.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        // A scenario with no completed prediction has no percentiles.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}

/// <summary>The options of the run and how the service was configured.</summary>
internal sealed record RunSettings(
    double DurationSeconds,
    double WarmupSeconds,
    int Rounds,
    IReadOnlyList<int> Concurrency,
    IReadOnlyList<string> Models,
    string Scenarios,
    IReadOnlyList<int> RawBatchSizes,
    double RawSecondsPerBatch,
    long MaxPredictions,
    IReadOnlyDictionary<string, string> ServiceEnvironment,
    string SeparateApisClient);

/// <summary>A demo model and what the run served for it.</summary>
internal sealed record ModelReport(
    string Name,
    int Version,
    string FeatureSource,
    IReadOnlyList<string> Heads,
    IReadOnlyList<string> Members,
    int MaxBatchSize,
    int MaxQueueDelayMicroseconds,
    int RequestBodies,
    double MeanBodyBytes,
    string? MultiHead,
    string? Unbatched,
    IReadOnlyList<SingleHeadReport> SingleHead);

internal sealed record SingleHeadReport(string Name, IReadOnlyList<string> Heads, string Origin);

/// <summary>The raw engine's sweep for one model: every thread layout at every batch size.</summary>
internal sealed record RawSweepReport(string Model, string Session, IReadOnlyList<RawBatchReport> Batches);

internal sealed record RawBatchReport(
    string Layout, int IntraOpThreads, int Callers, int BatchSize, long Runs, double RowsPerSecond, double P50RunMilliseconds, double P99RunMilliseconds, double CpuMillisecondsPerRow, double? OtherCpuShare);
