using System.Globalization;
using System.Text;

namespace MultiHeadServe.Benchmarks.Reporting;

/// <summary>The printed report: one table of every scenario, then the acceptance lines and the machine it ran on.</summary>
internal static class ResultTable
{
    private static readonly string[] Header =
    [
        "model", "scenario", "conc", "pred/s", "p50 ms", "p90 ms", "p99 ms", "srv CPU ms/pred",
        "fetch/pred", "fetch ms", "runs/pred", "rows/run", "run ms", "alloc KB/pred", "errors", "others",
    ];

    public static string Render(IReadOnlyList<ScenarioResult> results, IReadOnlyList<AcceptanceLine> acceptance, MachineReport machine,
        TimeSpan duration, TimeSpan warmup, IReadOnlyList<string> notes)
    {
        var rows = results.Select(Cells).ToList();
        var widths = Header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        AppendRow(text, Header, widths);
        text.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        string? previousModel = null;
        foreach (var (row, result) in rows.Zip(results))
        {
            if (previousModel is not null && previousModel != result.Model)
            {
                text.AppendLine();
            }

            previousModel = result.Model;
            AppendRow(text, row, widths);
        }

        text.AppendLine();
        text.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Each HTTP scenario: {duration.TotalSeconds:0.#} s measured after {warmup.TotalSeconds:0.#} s of warm-up; closed loop, one shared HttpClient, loopback. ") +
            "A prediction is every head for one input: one call for b and d, x calls for c (issued concurrently), one row for raw ORT (a), " +
            "whose latency is one run of the whole batch. Per-prediction CPU and allocations are the server process's (raw ORT: the benchmark's own CPU); " +
            "'others' is the CPU that other processes on the machine used during the window.");
        foreach (var note in notes)
        {
            text.AppendLine(note);
        }

        foreach (var failed in results.Where(r => r.Errors > 0))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"ERRORS in {failed.Model} / {failed.Label} at {failed.Concurrency}: {failed.Errors}; first: {failed.FirstError}");
        }

        text.AppendLine();
        text.AppendLine("Acceptance");
        foreach (var line in acceptance)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  [{line.Verdict}] {line.Text}");
        }

        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"Machine: {machine.Cores} cores ({machine.Processor ?? "unknown processor"}), {machine.OperatingSystem}, {machine.Runtime}, ONNX Runtime {machine.OnnxRuntime}.");
        text.AppendLine(machine.LoadAverageBefore is null
            ? "Load average: not available on this system."
            : string.Create(CultureInfo.InvariantCulture,
                $"Load average: {machine.LoadAverageBefore:0.00} (1 min) / {machine.LoadAverageFiveMinutesBefore:0.00} (5 min) before the run " +
                $"({(machine.QuietBefore == true ? "quiet" : "NOT quiet: other work shared the cores")}); " +
                $"peak {machine.LoadAveragePeak:0.00} during the run, which counts the benchmark's own client and server."));
        if (results.Select(r => r.OtherCpuShare).OfType<double>().ToList() is { Count: > 0 } others)
        {
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"Other processes during the measured windows: {others.Average():0.0%} of the machine on average, at most {others.Max():0.0%} " +
                $"({(others.Max() < 0.05 ? "quiet" : "NOT quiet")})."));
        }
        return text.ToString();
    }

    private static string[] Cells(ScenarioResult r) =>
    [
        r.Model,
        r.Label,
        r.Concurrency.ToString(CultureInfo.InvariantCulture),
        F(r.PredictionsPerSecond, "0"),
        F(r.P50Milliseconds, "0.00"),
        F(r.P90Milliseconds, "0.00"),
        F(r.P99Milliseconds, "0.00"),
        F(r.ServerCpuMillisecondsPerPrediction, "0.000"),
        F(r.FeatureFetchesPerPrediction, "0.00"),
        F(r.MeanFetchMilliseconds, "0.000"),
        F(r.SessionRunsPerPrediction, "0.000"),
        F(r.MeanBatchRows, "0.0"),
        F(r.MeanRunMilliseconds, "0.00"),
        F(r.AllocatedBytesPerPrediction / 1024, "0.0"),
        r.Errors.ToString(CultureInfo.InvariantCulture),
        r.OtherCpuShare is { } others ? others.ToString("0%", CultureInfo.InvariantCulture) : "-",
    ];

    private static void AppendRow(StringBuilder text, string[] cells, int[] widths)
    {
        for (var i = 0; i < cells.Length; i++)
        {
            // Names left-aligned, figures right-aligned.
            text.Append(i < 2 ? cells[i].PadRight(widths[i]) : cells[i].PadLeft(widths[i]));
            if (i < cells.Length - 1)
            {
                text.Append("  ");
            }
        }

        text.AppendLine();
    }

    private static string F(double? value, string format) =>
        value is { } v && double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "-";
}
