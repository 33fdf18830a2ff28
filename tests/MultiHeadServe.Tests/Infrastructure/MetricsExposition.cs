using System.Globalization;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>The text exposition as sample → value, labels sorted and OpenTelemetry's scope label left out.</summary>
internal static partial class MetricsExposition
{
    [System.Text.RegularExpressions.GeneratedRegex(@"\w+=""(?:[^""\\]|\\.)*""")]
    private static partial System.Text.RegularExpressions.Regex Label();

    public static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var valueStart = line.LastIndexOf(' ');
            var series = line[..valueStart];
            var brace = series.IndexOf('{', StringComparison.Ordinal);
            var key = series;
            if (brace >= 0)
            {
                var labels = Label().Matches(series[(brace + 1)..^1]).Select(m => m.Value)
                    .Where(l => !l.StartsWith("otel_scope_", StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal)
                    .ToList();
                key = labels.Count == 0 ? series[..brace] : $"{series[..brace]}{{{string.Join(',', labels)}}}";
            }

            samples[key] = double.Parse(line[(valueStart + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        return samples;
    }
}
