using System.Diagnostics;
using MultiHeadServe.Benchmarks.Load;
using MultiHeadServe.Benchmarks.Models;
using MultiHeadServe.Benchmarks.Reporting;
using MultiHeadServe.Onnx;
using MultiHeadServe.OnnxRuntime;
using SessionOptions = MultiHeadServe.OnnxRuntime.SessionOptions;

namespace MultiHeadServe.Benchmarks.Raw;

/// <summary>One batch size of the raw sweep.</summary>
/// <param name="BatchSize">Rows per run.</param>
/// <param name="Runs">Runs in the measured window.</param>
/// <param name="Elapsed">The window.</param>
/// <param name="RunLatencies">Time per run (the whole batch).</param>
/// <param name="CpuMillisecondsPerRow">This process's CPU time over the window, per row.</param>
/// <param name="OtherCpuShare">CPU other processes used over the window, as a share of the machine.</param>
internal sealed record RawBatchResult(int BatchSize, long Runs, TimeSpan Elapsed, LatencySamples RunLatencies, double CpuMillisecondsPerRow, double? OtherCpuShare)
{
    public double RowsPerSecond => Runs * BatchSize / Elapsed.TotalSeconds;
}

/// <summary>The sweep for one model, and how its session was built.</summary>
internal sealed record RawSweep(string Model, string SessionSource, IReadOnlyList<RawBatchResult> Batches)
{
    public RawBatchResult Best => Batches.MaxBy(b => b.RowsPerSecond)!;
}

/// <summary>
/// a. The machine's limit: ONNX Runtime in this process, no HTTP, no features, one caller running batches back
/// to back. The session is created as the service creates it (CPU, intra-op threads one per core, spinning off,
/// all graph optimisations; members fused with the service's own fusion), so the gap to b is the serving stack.
/// </summary>
internal static class RawOnnxBenchmark
{
    public static RawSweep Run(BenchmarkModel model, IReadOnlyList<int> batchSizes, TimeSpan perBatch, Action<string> progress)
    {
        var (session, source) = CreateSession(model);
        using (session)
        {
            var input = session.Inputs.Single(i => i.Name == model.FeatureInput);
            var rowShape = input.Shape.Skip(1).ToArray();
            var rowLength = (int)rowShape.Aggregate(1L, (a, d) => a * d);
            var reference = model.ReferenceRows(rowLength);
            var results = new List<RawBatchResult>();
            foreach (var batch in batchSizes)
            {
                var result = RunBatch(session, input.Name, rowShape, rowLength, reference, batch, perBatch);
                progress($"  raw {model.Name} batch {batch,3}: {result.RowsPerSecond,10:0} rows/s, {result.RunLatencies.Percentile(50),8:0.000} ms per run");
                results.Add(result);
            }

            return new RawSweep(model.Name, source, results);
        }
    }

    private static (InferenceSession Session, string Source) CreateSession(BenchmarkModel model)
    {
        var options = new SessionOptions
        {
            ExecutionProvider = ExecutionProvider.Cpu,
            GraphOptimizationLevel = GraphOptimizationLevel.All,
            ConfigEntries = { ["session.intra_op.allow_spinning"] = "0" },
        };
        var environment = OrtEnvironment.Shared(OrtLoggingLevel.Error);
        if (model.Members.Count == 0)
        {
            return (InferenceSession.FromFile(Path.Combine(model.VersionDirectory, "model.onnx"), options, environment), "model.onnx");
        }

        var members = model.Members
            .Select(file => (Path.GetFileNameWithoutExtension(file), OnnxModel.Load(Path.Combine(model.VersionDirectory, file)).Proto))
            .ToList();
        var fused = new OnnxModel(ModelFusion.Fuse(members));
        return (InferenceSession.FromBytes(fused.ToBytes(), options, environment), $"{string.Join(" + ", model.Members)} fused with ModelFusion.Fuse");
    }

    private static RawBatchResult RunBatch(InferenceSession session, string inputName, long[] rowShape, int rowLength, float[] reference, int batch, TimeSpan duration)
    {
        var data = new float[batch * rowLength];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = reference[i % reference.Length];
        }

        long[] shape = [batch, .. rowShape];
        using var tensor = OrtValue.CreateTensor(data.AsMemory(), shape);
        KeyValuePair<string, OrtValue>[] inputs = [new(inputName, tensor)];

        // Warm-up: the first runs at a new shape plan their memory.
        var warmupEnd = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2;
        do
        {
            using var _ = session.Run(inputs);
        }
        while (Stopwatch.GetTimestamp() < warmupEnd);

        var latencies = new List<long>(4096);
        var cpuBefore = Environment.CpuUsage.TotalTime;
        var machineBefore = MachineMonitor.MachineBusyTime();
        var start = Stopwatch.GetTimestamp();
        var end = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var now = start;
        while (now < end)
        {
            using (session.Run(inputs))
            {
            }

            var finished = Stopwatch.GetTimestamp();
            latencies.Add(finished - now);
            now = finished;
        }

        var machineBusy = MachineMonitor.MachineBusyTime() - machineBefore;
        var cpu = Environment.CpuUsage.TotalTime - cpuBefore;
        var elapsed = Stopwatch.GetElapsedTime(start, now);
        double? others = machineBusy is { } busy ? Math.Max(0, (busy - cpu).TotalSeconds) / (elapsed.TotalSeconds * Environment.ProcessorCount) : null;
        return new RawBatchResult(batch, latencies.Count, elapsed, new LatencySamples([latencies]), cpu.TotalMilliseconds / (latencies.Count * (double)batch), others);
    }
}
