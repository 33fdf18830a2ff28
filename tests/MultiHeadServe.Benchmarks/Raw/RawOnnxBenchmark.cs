using System.Diagnostics;
using MultiHeadServe.Benchmarks.Load;
using MultiHeadServe.Benchmarks.Models;
using MultiHeadServe.Benchmarks.Reporting;
using MultiHeadServe.Onnx;
using Microsoft.ML.OnnxRuntime;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace MultiHeadServe.Benchmarks.Raw;

/// <summary>
/// How the raw runs use the cores: <paramref name="Callers"/> threads each running batches back to back on
/// the one session, each run using <paramref name="IntraOpThreads"/> threads inside its operators.
/// </summary>
internal sealed record ThreadLayout(int IntraOpThreads, int Callers)
{
    /// <summary>The two ways to fill the machine: one run using every core, or one single-threaded run per core.</summary>
    public static IReadOnlyList<ThreadLayout> For(int cores) =>
        cores <= 1 ? [new(1, 1)] : [new(cores, 1), new(1, cores)];

    public override string ToString() => Callers == 1
        ? $"1 run x {IntraOpThreads} threads"
        : $"{Callers} runs x {IntraOpThreads} thread{(IntraOpThreads == 1 ? "" : "s")}";
}

/// <summary>One batch size of the raw sweep, in one thread layout.</summary>
/// <param name="Layout">Callers and threads per run.</param>
/// <param name="BatchSize">Rows per run.</param>
/// <param name="Runs">Runs in the measured window (all callers).</param>
/// <param name="Elapsed">The window.</param>
/// <param name="RunLatencies">Time per run (the whole batch).</param>
/// <param name="CpuMillisecondsPerRow">This process's CPU time over the window, per row.</param>
/// <param name="OtherCpuShare">CPU other processes used over the window, as a share of the machine.</param>
internal sealed record RawBatchResult(
    ThreadLayout Layout, int BatchSize, long Runs, TimeSpan Elapsed, LatencySamples RunLatencies, double CpuMillisecondsPerRow, double? OtherCpuShare)
{
    public double RowsPerSecond => Runs * BatchSize / Elapsed.TotalSeconds;
}

/// <summary>The sweep for one model, and how its session was built.</summary>
internal sealed record RawSweep(string Model, string SessionSource, IReadOnlyList<RawBatchResult> Batches)
{
    /// <summary>The machine's limit for the model: the most rows per second of any layout and batch size.</summary>
    public RawBatchResult Best => Batches.MaxBy(b => b.RowsPerSecond)!;

    /// <summary>The best the model does one row per run.</summary>
    public RawBatchResult? BestSingleRow => Batches.Where(b => b.BatchSize == 1).MaxBy(b => b.RowsPerSecond);
}

/// <summary>
/// a. The machine's limit: ONNX Runtime in this process, no HTTP, no features, runs back to back. The session is
/// created as the service creates it (CPU, spinning off, all graph optimisations; members fused with the service's
/// own fusion), once per <see cref="ThreadLayout"/>: one run using every core, and one single-threaded run per core
/// (which is how a server's concurrent requests use the machine). The gap to b is the serving stack.
/// </summary>
internal static class RawOnnxBenchmark
{
    public static RawSweep Run(BenchmarkModel model, IReadOnlyList<int> batchSizes, TimeSpan perBatch, bool cuda, Action<string> progress)
    {
        var results = new List<RawBatchResult>();
        var source = "";
        foreach (var layout in ThreadLayout.For(Environment.ProcessorCount))
        {
            var (session, sessionSource) = CreateSession(model, layout.IntraOpThreads, cuda);
            source = sessionSource;
            using (session)
            {
                var rowShape = session.InputMetadata[model.FeatureInput].Dimensions.Skip(1).Select(d => (long)d).ToArray();
                var rowLength = (int)rowShape.Aggregate(1L, (a, d) => a * d);
                var reference = model.ReferenceRows(rowLength);
                foreach (var batch in batchSizes)
                {
                    var result = RunBatch(session, model.FeatureInput, rowShape, rowLength, reference, layout, batch, perBatch);
                    progress($"  raw {model.Name} {layout}, batch {batch,3}: {result.RowsPerSecond,10:0} rows/s, " +
                        $"{result.RunLatencies.Percentile(50),8:0.000} ms per run, {result.CpuMillisecondsPerRow:0.000} CPU ms per row");
                    results.Add(result);
                }
            }
        }

        return new RawSweep(model.Name, source, results);
    }

    /// <summary>
    /// The official API as its documentation shows it, with the service's settings (all optimisations, no spinning),
    /// on CUDA when <paramref name="cuda"/> (the GPU build, on a GPU host).
    /// </summary>
    internal static SessionOptions Options(int intraOpThreads, bool cuda)
    {
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = intraOpThreads,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        if (cuda)
        {
            options.AppendExecutionProvider_CUDA(0);
        }

        return options;
    }

    private static (InferenceSession Session, string Source) CreateSession(BenchmarkModel model, int intraOpThreads, bool cuda)
    {
        using var options = Options(intraOpThreads, cuda);
        if (model.Members.Count == 0)
        {
            return (new InferenceSession(Path.Combine(model.VersionDirectory, "model.onnx"), options), "model.onnx");
        }

        var members = model.Members
            .Select(file => (Path.GetFileNameWithoutExtension(file), OnnxModel.Load(Path.Combine(model.VersionDirectory, file)).Proto))
            .ToList();
        var fused = new OnnxModel(ModelFusion.Fuse(members, new FuseOptions { DeduplicateComputation = true }));
        return (new InferenceSession(fused.ToBytes(), options), $"{string.Join(" + ", model.Members)} fused with ModelFusion.Fuse");
    }

    private static RawBatchResult RunBatch(
        InferenceSession session, string inputName, long[] rowShape, int rowLength, float[] reference, ThreadLayout layout, int batch, TimeSpan duration)
    {
        var data = new float[batch * rowLength];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = reference[i % reference.Length];
        }

        long[] shape = [batch, .. rowShape];

        // Each caller has its own input tensor over the same rows; the session is shared, as the service shares it.
        var tensors = Enumerable.Range(0, layout.Callers).Select(_ => OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(), shape)).ToArray();
        using var runOptions = new RunOptions();
        string[] inputNames = [inputName];
        var outputNames = session.OutputNames;
        try
        {
            var latencies = tensors.Select(_ => new List<long>(4096)).ToArray();
            using var go = new Barrier(layout.Callers + 1);
            long start = 0, end = 0;
            var callers = tensors.Select((tensor, c) => new Thread(() =>
            {
                OrtValue[] inputs = [tensor];

                // Warm-up: the first runs at a new shape plan their memory.
                var warmupEnd = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2;
                do
                {
                    using var _ = session.Run(runOptions, inputNames, inputs, outputNames);
                }
                while (Stopwatch.GetTimestamp() < warmupEnd);

                go.SignalAndWait(); // warm
                go.SignalAndWait(); // measure from here
                var now = Volatile.Read(ref start);
                while (now < Volatile.Read(ref end))
                {
                    using (session.Run(runOptions, inputNames, inputs, outputNames))
                    {
                    }

                    var finished = Stopwatch.GetTimestamp();
                    latencies[c].Add(finished - now);
                    now = finished;
                }
            }) { IsBackground = true, Name = $"raw-caller-{c}" }).ToList();
            callers.ForEach(t => t.Start());

            go.SignalAndWait();
            var cpuBefore = Environment.CpuUsage.TotalTime;
            var machineBefore = MachineMonitor.MachineBusyTime();
            Volatile.Write(ref start, Stopwatch.GetTimestamp());
            Volatile.Write(ref end, start + (long)(duration.TotalSeconds * Stopwatch.Frequency));
            go.SignalAndWait();
            callers.ForEach(t => t.Join());

            var elapsed = Stopwatch.GetElapsedTime(start);
            var machineBusy = MachineMonitor.MachineBusyTime() - machineBefore;
            var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
            var runs = latencies.Sum(l => l.Count);
            double? others = machineBusy is { } busy ? Math.Max(0, (busy - cpu).TotalSeconds) / (elapsed.TotalSeconds * Environment.ProcessorCount) : null;
            return new RawBatchResult(layout, batch, runs, elapsed, new LatencySamples(latencies), cpu.TotalMilliseconds / (runs * (double)batch), others);
        }
        finally
        {
            foreach (var tensor in tensors)
            {
                tensor.Dispose();
            }
        }
    }
}
