using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace MultiHeadServe.Observability;

/// <summary>
/// Aggregates the service's System.Diagnostics.Metrics instruments in process and renders them in
/// Prometheus' text exposition format on /metrics. Counters are summed per tag set; histograms keep
/// cumulative buckets, a sum and a count. Thread-safe.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    private static readonly double[] Buckets = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<(string Name, string Labels), Series> _series = new();
    private readonly ConcurrentDictionary<string, (string Type, string Help)> _families = new();

    /// <param name="meterFactory">The application's meter factory: only its meters are exported, so two hosts in one process (tests) never mix.</param>
    /// <param name="meterNames">The meters to export.</param>
    public PrometheusExporter(IMeterFactory meterFactory, IEnumerable<string> meterNames)
    {
        var names = meterNames.ToHashSet(StringComparer.Ordinal);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (names.Contains(instrument.Meter.Name) && ReferenceEquals(instrument.Meter.Scope, meterFactory))
            {
                var type = instrument switch
                {
                    Histogram<double> or Histogram<long> => "histogram",
                    _ when instrument.GetType().Name.StartsWith("ObservableGauge", StringComparison.Ordinal) => "gauge",
                    _ => "counter",
                };
                _families[instrument.Name] = (type, instrument.Description ?? "");
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var labels = Labels(tags);
        var histogram = instrument is Histogram<double> or Histogram<long>;
        var series = _series.GetOrAdd((instrument.Name, labels), _ => new Series(histogram));
        if (instrument.IsObservable)
        {
            // Observable instruments report their current (cumulative) value on each collection.
            series.Set(value);
        }
        else
        {
            series.Add(value);
        }
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0)
        {
            return "";
        }

        var pairs = new List<string>(tags.Length);
        foreach (var tag in tags)
        {
            var value = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
            pairs.Add($"{tag.Key}=\"{value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\"");
        }

        pairs.Sort(StringComparer.Ordinal);
        return string.Join(",", pairs);
    }

    /// <summary>The current values in Prometheus text format (version 0.0.4).</summary>
    public string Render()
    {
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var family in _series.GroupBy(s => s.Key.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var (type, help) = _families.GetValueOrDefault(family.Key, ("counter", ""));
            text.Append("# HELP ").Append(family.Key).Append(' ').Append(help).Append('\n');
            text.Append("# TYPE ").Append(family.Key).Append(' ').Append(type).Append('\n');
            foreach (var (key, series) in family.OrderBy(s => s.Key.Labels, StringComparer.Ordinal))
            {
                series.Render(text, key.Name, key.Labels);
            }
        }

        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private sealed class Series(bool histogram)
    {
        private readonly Lock _lock = new();
        private readonly long[] _buckets = new long[Buckets.Length];
        private double _sum;
        private long _count;

        public void Add(double value)
        {
            lock (_lock)
            {
                _sum += value;
                _count++;
                if (histogram)
                {
                    for (var i = 0; i < Buckets.Length; i++)
                    {
                        if (value <= Buckets[i])
                        {
                            _buckets[i]++;
                        }
                    }
                }
            }
        }

        public void Set(double value)
        {
            lock (_lock)
            {
                _sum = value;
                _count = 1;
            }
        }

        public void Render(StringBuilder text, string name, string labels)
        {
            lock (_lock)
            {
                if (!histogram)
                {
                    Line(text, name, labels, _sum);
                    return;
                }

                var prefix = labels.Length > 0 ? labels + "," : "";
                for (var i = 0; i < Buckets.Length; i++)
                {
                    Line(text, name + "_bucket", prefix + $"le=\"{Buckets[i].ToString(CultureInfo.InvariantCulture)}\"", _buckets[i]);
                }

                Line(text, name + "_bucket", prefix + "le=\"+Inf\"", _count);
                Line(text, name + "_sum", labels, _sum);
                Line(text, name + "_count", labels, _count);
            }
        }

        private static void Line(StringBuilder text, string name, string labels, double value)
        {
            text.Append(name);
            if (labels.Length > 0)
            {
                text.Append('{').Append(labels).Append('}');
            }

            text.Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }
    }
}
