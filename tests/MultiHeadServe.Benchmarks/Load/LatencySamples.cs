using System.Diagnostics;

namespace MultiHeadServe.Benchmarks.Load;

/// <summary>Every latency of a window, sorted: percentiles are exact (nearest rank), not estimated from buckets.</summary>
internal sealed class LatencySamples
{
    private readonly double[] _milliseconds;

    /// <param name="ticks">Per source (worker), durations in <see cref="Stopwatch"/> ticks.</param>
    public LatencySamples(IEnumerable<IReadOnlyCollection<long>> ticks)
    {
        _milliseconds = [.. ticks.SelectMany(t => t).Select(t => t * 1000.0 / Stopwatch.Frequency)];
        Array.Sort(_milliseconds);
    }

    /// <param name="milliseconds">Durations in milliseconds, in any order.</param>
    public LatencySamples(IEnumerable<double> milliseconds)
    {
        _milliseconds = [.. milliseconds];
        Array.Sort(_milliseconds);
    }

    public int Count => _milliseconds.Length;

    /// <summary>Every sample, in milliseconds, ascending.</summary>
    public IReadOnlyList<double> Milliseconds => _milliseconds;

    public double Mean => Count == 0 ? double.NaN : _milliseconds.Average();

    public double Max => Count == 0 ? double.NaN : _milliseconds[^1];

    /// <summary>The smallest sample that at least <paramref name="percent"/>% of the samples do not exceed.</summary>
    public double Percentile(double percent)
    {
        if (Count == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(percent / 100 * Count);
        return _milliseconds[Math.Clamp(rank, 1, Count) - 1];
    }
}
