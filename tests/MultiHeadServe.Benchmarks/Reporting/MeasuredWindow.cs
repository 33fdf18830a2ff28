using MultiHeadServe.Benchmarks.Load;

namespace MultiHeadServe.Benchmarks.Reporting;

/// <summary>One measured window of a scenario (a round) and its latency samples, which rounds pool.</summary>
internal sealed record MeasuredWindow(ScenarioResult Result, LatencySamples Latencies)
{
    /// <summary>
    /// One scenario's rounds as one row: counts and time add up, latency percentiles come from every sample,
    /// per-prediction figures are averaged over predictions (per-run figures over runs), so the row is what one
    /// window as long as all the rounds together would have shown, drift aside.
    /// </summary>
    public static ScenarioResult Combine(IReadOnlyList<MeasuredWindow> rounds)
    {
        ArgumentOutOfRangeException.ThrowIfZero(rounds.Count);
        var results = rounds.Select(r => r.Result).ToList();
        var first = results[0];
        var perRound = results.Select(r => r.PredictionsPerSecond).ToList();
        if (rounds.Count == 1)
        {
            return first with { RoundPredictionsPerSecond = perRound };
        }

        var latencies = new LatencySamples(rounds.SelectMany(r => r.Latencies.Milliseconds));
        var predictions = results.Sum(r => r.Predictions);
        var seconds = results.Sum(r => r.Seconds);
        var errors = results.Sum(r => r.Errors);
        return first with
        {
            Predictions = predictions,
            Seconds = seconds,
            PredictionsPerSecond = predictions / seconds,
            RoundPredictionsPerSecond = perRound,
            P50Milliseconds = latencies.Percentile(50),
            P90Milliseconds = latencies.Percentile(90),
            P99Milliseconds = latencies.Percentile(99),
            MeanMilliseconds = latencies.Mean,
            MaxMilliseconds = latencies.Max,
            Errors = errors,
            FirstError = results.Select(r => r.FirstError).FirstOrDefault(e => e is not null),
            ServerCpuMillisecondsPerPrediction = Mean(results, r => r.ServerCpuMillisecondsPerPrediction, r => r.Predictions),
            ServerCpuShare = Mean(results, r => r.ServerCpuShare, r => r.Seconds),
            ClientCpuMillisecondsPerPrediction = Mean(results, r => r.ClientCpuMillisecondsPerPrediction, r => r.Predictions),
            FeatureFetchesPerPrediction = Mean(results, r => r.FeatureFetchesPerPrediction, r => r.Predictions),
            MeanFetchMilliseconds = Mean(results, r => r.MeanFetchMilliseconds, r => r.Predictions * (r.FeatureFetchesPerPrediction ?? 0)),
            SessionRunsPerPrediction = Mean(results, r => r.SessionRunsPerPrediction, r => r.Predictions),
            MeanBatchRows = Mean(results, r => r.MeanBatchRows, r => r.Predictions * (r.SessionRunsPerPrediction ?? 0)),
            MeanRunMilliseconds = Mean(results, r => r.MeanRunMilliseconds, r => r.Predictions * (r.SessionRunsPerPrediction ?? 0)),
            AllocatedBytesPerPrediction = Mean(results, r => r.AllocatedBytesPerPrediction, r => r.Predictions),
            AllocatedBytesPerRequest = Mean(results, r => r.AllocatedBytesPerRequest, r => r.Predictions * r.CallsPerPrediction),
            OtherCpuShare = Mean(results, r => r.OtherCpuShare, r => r.Seconds),
            LoadAverage = results.Max(r => r.LoadAverage),
        };
    }

    /// <summary>The weighted mean of a figure over the rounds; null when any round lacks it or nothing weighs.</summary>
    private static double? Mean(IReadOnlyList<ScenarioResult> results, Func<ScenarioResult, double?> value, Func<ScenarioResult, double> weight)
    {
        double sum = 0, weights = 0;
        foreach (var result in results)
        {
            if (value(result) is not { } v)
            {
                return null;
            }

            sum += v * weight(result);
            weights += weight(result);
        }

        return weights > 0 ? sum / weights : null;
    }
}
