using System.Globalization;
using System.Security;
using System.Text;

namespace MultiHeadServe.Benchmarks.Reporting;

/// <summary>
/// The table as an SVG: per model, horizontal bars of throughput and of p99 latency, one bar per row of the
/// table, sharing the row labels. Written by hand: a few rectangles, lines and labels need no chart library.
/// </summary>
internal static class ResultChart
{
    private const double Margin = 20;
    private const double LabelWidth = 300;
    private const double PanelWidth = 360;
    private const double PanelGap = 130;
    private const double RowHeight = 22;
    private const double BarHeight = 14;
    private const double TitleHeight = 44;
    private const double AxisHeight = 46;
    private const double SectionGap = 24;
    private const double Width = Margin + LabelWidth + PanelWidth + PanelGap + PanelWidth + Margin + 60;

    public static string Render(IReadOnlyList<ScenarioResult> results, string subtitle)
    {
        var models = results.Select(r => r.Model).Distinct(StringComparer.Ordinal).ToList();
        var body = new StringBuilder();
        var y = Margin + 36;
        foreach (var model in models)
        {
            y = Section(body, model, [.. results.Where(r => r.Model == model)], y) + SectionGap;
        }

        var svg = new StringBuilder();
        svg.AppendLine(CultureInfo.InvariantCulture,
            $"""<svg xmlns="http://www.w3.org/2000/svg" width="{Width:0}" height="{y:0}" viewBox="0 0 {Width:0} {y:0}" font-family="sans-serif" font-size="12">""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<rect width="100%" height="100%" fill="white"/>""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="{Margin}" y="{Margin + 8}" font-size="16" font-weight="bold">MultiHeadServe throughput benchmark</text>""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="{Margin}" y="{Margin + 26}" fill="#555">{Escape(subtitle)}</text>""");
        svg.Append(body);
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    /// <returns>The y just below the section.</returns>
    private static double Section(StringBuilder svg, string model, IReadOnlyList<ScenarioResult> rows, double top)
    {
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="{Margin}" y="{top + 16}" font-size="14" font-weight="bold">{Escape(model)}</text>""");
        var chartTop = top + TitleHeight;
        var left = Margin + LabelWidth;
        var right = left + PanelWidth + PanelGap;
        for (var i = 0; i < rows.Count; i++)
        {
            var labelY = chartTop + i * RowHeight + RowHeight / 2 + 4;
            svg.AppendLine(CultureInfo.InvariantCulture,
                $"""<text x="{left - 8}" y="{labelY:0.#}" text-anchor="end">{Escape(RowLabel(rows[i]))}</text>""");
        }

        Panel(svg, rows, left, chartTop, "Throughput", "predictions per second (raw ORT: rows per second)", r => r.PredictionsPerSecond, "0");
        Panel(svg, [.. rows.Select(r => r.Kind == Scenarios.Raw ? null : r)], right, chartTop, "p99 latency (HTTP scenarios)", "milliseconds",
            r => r.P99Milliseconds, "0.0");
        return chartTop + rows.Count * RowHeight + AxisHeight;
    }

    private static void Panel(StringBuilder svg, IReadOnlyList<ScenarioResult?> rows, double left, double top, string title, string axisTitle,
        Func<ScenarioResult, double> value, string format)
    {
        var values = rows.Select(r => r is null ? double.NaN : value(r)).ToList();
        var max = values.Where(double.IsFinite).DefaultIfEmpty(1).Max();
        // The raw engine can outrun HTTP by orders of magnitude (a small MLP): then the axis fits the served rows
        // and the raw bars are drawn broken, so the comparison the chart is for stays readable.
        var served = rows.Select((r, i) => r is { Kind: not Scenarios.Raw } ? values[i] : double.NaN).Where(double.IsFinite).DefaultIfEmpty(0).Max();
        if (served > 0 && max > 3 * served)
        {
            max = served;
        }
        var step = NiceStep(max);
        var axisMax = Math.Max(step, Math.Ceiling(max / step) * step);
        var bottom = top + rows.Count * RowHeight;
        double X(double v) => left + v / axisMax * PanelWidth;

        svg.AppendLine(CultureInfo.InvariantCulture, $"""<text x="{left}" y="{top - 8}" font-weight="bold">{Escape(title)}</text>""");
        for (var tick = 0.0; tick <= axisMax + step / 2; tick += step)
        {
            svg.AppendLine(CultureInfo.InvariantCulture,
                $"""<line x1="{X(tick):0.#}" y1="{top:0.#}" x2="{X(tick):0.#}" y2="{bottom + 4:0.#}" stroke="#ddd"/>""");
            svg.AppendLine(CultureInfo.InvariantCulture,
                $"""<text x="{X(tick):0.#}" y="{bottom + 18:0.#}" text-anchor="middle" fill="#333">{Escape(Tick(tick))}</text>""");
        }

        svg.AppendLine(CultureInfo.InvariantCulture, $"""<line x1="{left}" y1="{bottom:0.#}" x2="{left + PanelWidth}" y2="{bottom:0.#}" stroke="#333"/>""");
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<line x1="{left}" y1="{top:0.#}" x2="{left}" y2="{bottom:0.#}" stroke="#333"/>""");
        svg.AppendLine(CultureInfo.InvariantCulture,
            $"""<text x="{left + PanelWidth / 2}" y="{bottom + 36:0.#}" text-anchor="middle" fill="#333">{Escape(axisTitle)}</text>""");

        for (var i = 0; i < rows.Count; i++)
        {
            if (rows[i] is not { } row || !double.IsFinite(values[i]))
            {
                continue;
            }

            var barTop = top + i * RowHeight + (RowHeight - BarHeight) / 2;
            var offScale = values[i] > axisMax;
            var width = Math.Max(1, offScale ? PanelWidth : X(values[i]) - left);
            svg.AppendLine(CultureInfo.InvariantCulture,
                $"""<rect x="{left}" y="{barTop:0.#}" width="{width:0.#}" height="{BarHeight}" fill="{Colour(row.Kind)}"/>""");
            if (offScale)
            {
                // Two white slashes across the bar: the axis is broken here.
                foreach (var offset in new[] { 24.0, 18.0 })
                {
                    svg.AppendLine(CultureInfo.InvariantCulture,
                        $"""<line x1="{left + width - offset - 3:0.#}" y1="{barTop + BarHeight + 1:0.#}" x2="{left + width - offset + 3:0.#}" y2="{barTop - 1:0.#}" stroke="white" stroke-width="2"/>""");
                }
            }

            var label = values[i].ToString(format, CultureInfo.InvariantCulture) + (offScale ? " (off scale)" : "");
            svg.AppendLine(CultureInfo.InvariantCulture,
                $"""<text x="{left + width + 4:0.#}" y="{barTop + BarHeight - 3:0.#}" fill="#111">{Escape(label)}</text>""");
        }
    }

    private static string RowLabel(ScenarioResult r) =>
        r.Kind == Scenarios.Raw ? r.Label : string.Create(CultureInfo.InvariantCulture, $"{r.Label}, {r.Concurrency} clients");

    private static string Colour(Scenarios kind) => kind switch
    {
        Scenarios.Raw => "#7f7f7f",
        Scenarios.MultiHead => "#1f77b4",
        Scenarios.MultiHeadUnbatched => "#9ecae1",
        Scenarios.SeparateApis => "#ff7f0e",
        Scenarios.Plain => "#d62728",
        Scenarios.Baseline => "#9467bd",
        _ => "#2ca02c",
    };

    /// <summary>1, 2 or 5 times a power of ten, giving about five ticks.</summary>
    private static double NiceStep(double max)
    {
        if (!(max > 0))
        {
            return 1;
        }

        var rough = max / 5;
        var power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var fraction = rough / power;
        return power * (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10);
    }

    private static string Tick(double value) => value >= 10_000
        ? (value / 1000).ToString("0.#", CultureInfo.InvariantCulture) + "k"
        : value.ToString("0.##", CultureInfo.InvariantCulture);

    private static string Escape(string text) => SecurityElement.Escape(text);
}
