using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace MultiHeadServe.Benchmarks.Reporting;

/// <summary>
/// The machine a run measured: what it is and how busy it was. Figures from a busy machine are not comparable
/// with anything, so the load average before the run and its peak during the run go into every report.
/// </summary>
internal sealed record MachineReport(
    int Cores,
    string? Processor,
    string OperatingSystem,
    string Runtime,
    string OnnxRuntime,
    double? LoadAverageBefore,
    double? LoadAverageFiveMinutesBefore,
    double? LoadAveragePeak,
    double? LoadAverageAfter)
{
    /// <summary>Whether the one-minute load average before the run left the cores to the benchmark.</summary>
    public bool? QuietBefore => LoadAverageBefore is { } load ? load < Cores * 0.5 : null;
}

/// <summary>Samples the one-minute load average every few seconds while a run goes on.</summary>
internal sealed class MachineMonitor : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampling;
    private readonly double? _before;
    private readonly double? _fiveMinutesBefore;
    private double _peak;

    public MachineMonitor()
    {
        var load = ReadLoadAverage();
        _before = load?.OneMinute;
        _fiveMinutesBefore = load?.FiveMinutes;
        _peak = _before ?? 0;
        _sampling = SampleAsync(_stop.Token);
    }

    /// <summary>
    /// CPU time the whole machine has spent busy (every process, user and system), from /proc/stat; null where it
    /// does not exist. Less the benchmark's own processes, it shows whether anything else ran during a window.
    /// </summary>
    public static TimeSpan? MachineBusyTime()
    {
        const string path = "/proc/stat";
        // The kernel reports in USER_HZ ticks, 100 per second on Linux.
        const double TicksPerSecond = 100;
        if (!File.Exists(path))
        {
            return null;
        }

        var fields = File.ReadLines(path).First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // cpu user nice system idle iowait irq softirq steal ...: busy is everything but idle and iowait.
        var ticks = fields.Skip(1).Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var busy = ticks.Where((_, i) => i is not 3 and not 4 && i < 8).Sum();
        return TimeSpan.FromSeconds(busy / TicksPerSecond);
    }

    /// <summary>The one-minute load average now (Linux), or null where /proc/loadavg does not exist.</summary>
    public static double? LoadAverageNow() => ReadLoadAverage()?.OneMinute;

    public MachineReport Report()
    {
        var after = LoadAverageNow();
        return new MachineReport(
            Environment.ProcessorCount,
            ReadProcessorName(),
            RuntimeInformation.OSDescription,
            RuntimeInformation.FrameworkDescription,
            OrtEnv.Instance().GetVersionString(),
            _before,
            _fiveMinutesBefore,
            _before is null ? null : Math.Max(Volatile.Read(ref _peak), after ?? 0),
            after);
    }

    private async Task SampleAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (LoadAverageNow() is { } load && load > Volatile.Read(ref _peak))
                {
                    Volatile.Write(ref _peak, load);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped at the end of the run.
        }
    }

    private static (double OneMinute, double FiveMinutes)? ReadLoadAverage()
    {
        const string path = "/proc/loadavg";
        if (!File.Exists(path))
        {
            return null;
        }

        var fields = File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 2 &&
            double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var one) &&
            double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var five)
            ? (one, five)
            : null;
    }

    private static string? ReadProcessorName()
    {
        const string path = "/proc/cpuinfo";
        return File.Exists(path)
            ? File.ReadLines(path).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _sampling;
        _stop.Dispose();
    }
}
