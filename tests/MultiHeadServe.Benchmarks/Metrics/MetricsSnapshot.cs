using System.Globalization;
using System.Text;

namespace MultiHeadServe.Benchmarks.Metrics;

/// <summary>One scrape of the service's /metrics (Prometheus text format): every sample, by name and labels.</summary>
internal sealed class MetricsSnapshot
{
    private readonly Dictionary<string, List<Sample>> _samples;

    private MetricsSnapshot(Dictionary<string, List<Sample>> samples) => _samples = samples;

    public static async Task<MetricsSnapshot> ScrapeAsync(HttpClient client, Uri baseAddress, CancellationToken cancellationToken)
    {
        var text = await client.GetStringAsync(new Uri(baseAddress, "metrics"), cancellationToken);
        return Parse(text);
    }

    /// <summary>Parses the text exposition format: <c>name{label="value",...} number</c> per line, comments skipped.</summary>
    /// <exception cref="FormatException">A line is not a sample.</exception>
    public static MetricsSnapshot Parse(string text)
    {
        var samples = new Dictionary<string, List<Sample>>(StringComparer.Ordinal);
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var nameEnd = line.IndexOfAny(['{', ' ']);
            if (nameEnd <= 0)
            {
                throw new FormatException($"Not a metrics sample: '{line}'.");
            }

            var name = line[..nameEnd];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            var position = nameEnd;
            if (line[position] == '{')
            {
                position = ReadLabels(line, position + 1, labels);
            }

            var valueText = line[position..].Trim().Split(' ')[0];
            var value = valueText switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            if (!samples.TryGetValue(name, out var list))
            {
                samples[name] = list = [];
            }

            list.Add(new Sample(labels, value));
        }

        return new MetricsSnapshot(samples);
    }

    /// <summary>The sum of <paramref name="name"/> over the series whose <c>model</c> label is one of <paramref name="models"/>.</summary>
    public double SumForModels(string name, IReadOnlySet<string> models) =>
        Sum(name, labels => labels.TryGetValue("model", out var model) && models.Contains(model));

    /// <summary>The sum of <paramref name="name"/> over every series (a process-wide counter has one).</summary>
    public double Sum(string name, Func<IReadOnlyDictionary<string, string>, bool>? where = null) =>
        _samples.TryGetValue(name, out var list) ? list.Where(s => where is null || where(s.Labels)).Sum(s => s.Value) : 0;

    /// <returns>The index just after the closing brace.</returns>
    private static int ReadLabels(string line, int position, Dictionary<string, string> labels)
    {
        while (position < line.Length && line[position] != '}')
        {
            var equals = line.IndexOf('=', position);
            if (equals < 0 || equals + 1 >= line.Length || line[equals + 1] != '"')
            {
                throw new FormatException($"Malformed labels in '{line}'.");
            }

            var key = line[position..equals].Trim();
            var value = new StringBuilder();
            var i = equals + 2;
            for (; i < line.Length && line[i] != '"'; i++)
            {
                if (line[i] == '\\' && i + 1 < line.Length)
                {
                    i++;
                    value.Append(line[i] == 'n' ? '\n' : line[i]);
                }
                else
                {
                    value.Append(line[i]);
                }
            }

            labels[key] = value.ToString();
            position = i + 1;
            if (position < line.Length && line[position] == ',')
            {
                position++;
            }
        }

        return position + 1;
    }

    private sealed record Sample(IReadOnlyDictionary<string, string> Labels, double Value);
}

/// <summary>
/// What the service did between two scrapes, for the models of one scenario. Reads the OpenTelemetry names
/// (seconds) and, for a baseline build from before them, the service's earlier names (milliseconds).
/// </summary>
/// <param name="Requests">Model requests answered (mhs_requests_total).</param>
/// <param name="FeatureFetches">mhs_feature_fetches_total.</param>
/// <param name="FetchMilliseconds">Time spent fetching features over all calls: image decode, store lookups.</param>
/// <param name="SessionRuns">mhs_session_runs_total.</param>
/// <param name="BatchRows">Rows over all runs (mhs_batch_rows sum).</param>
/// <param name="InferenceMilliseconds">Run time over all runs.</param>
/// <param name="AllocatedBytes">Managed bytes the whole process allocated (the runtime's dotnet_gc_heap_total_allocated_bytes_total).</param>
/// <param name="CpuSeconds">CPU the whole process used, as the runtime reports it.</param>
internal sealed record ServerActivity(
    double Requests,
    double FeatureFetches,
    double FetchMilliseconds,
    double SessionRuns,
    double BatchRows,
    double InferenceMilliseconds,
    double AllocatedBytes,
    double CpuSeconds)
{
    public static ServerActivity Between(MetricsSnapshot before, MetricsSnapshot after, IReadOnlySet<string> models)
    {
        double Delta(string name) => after.SumForModels(name, models) - before.SumForModels(name, models);
        double ProcessDelta(string name) => after.Sum(name) - before.Sum(name);
        bool Exported(string name) => after.Sum(name) != 0 || before.Sum(name) != 0;
        var seconds = Exported("dotnet_gc_heap_total_allocated_bytes_total");
        return new ServerActivity(
            Delta("mhs_requests_total"),
            Delta("mhs_feature_fetches_total"),
            seconds ? Delta("mhs_feature_fetch_duration_seconds_sum") * 1000 : Delta("mhs_feature_fetch_ms_sum"),
            Delta("mhs_session_runs_total"),
            Delta("mhs_batch_rows_sum"),
            seconds ? Delta("mhs_inference_duration_seconds_sum") * 1000 : Delta("mhs_inference_ms_sum"),
            ProcessDelta(seconds ? "dotnet_gc_heap_total_allocated_bytes_total" : "mhs_process_allocated_bytes_total"),
            ProcessDelta(seconds ? "dotnet_process_cpu_time_seconds_total" : "mhs_process_cpu_seconds_total"));
    }
}
