using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using MultiHeadServe.Benchmarks.Models;
using MultiHeadServe.Onnx;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace MultiHeadServe.Benchmarks.Raw;

/// <summary>What fusing a model's members saved at one batch size.</summary>
/// <param name="Model">The model.</param>
/// <param name="BatchSize">Rows per run.</param>
/// <param name="FusedMilliseconds">Median time of one run of the fused, deduplicated graph (every head).</param>
/// <param name="SequentialMilliseconds">Median time of the members run one after another (an ensemble of complete models).</param>
/// <param name="SideBySideMilliseconds">Median time of the members run at once, one thread each.</param>
/// <param name="FusedBytes">The fused graph's size.</param>
/// <param name="MemberBytes">The members' files, added up.</param>
internal sealed record FusionResult(
    string Model, int BatchSize, double FusedMilliseconds, double SequentialMilliseconds, double SideBySideMilliseconds, long FusedBytes, long MemberBytes)
{
    public double SequentialRatio => FusedMilliseconds / SequentialMilliseconds;

    public double SideBySideRatio => FusedMilliseconds / SideBySideMilliseconds;

    public double SizeRatio => (double)FusedBytes / MemberBytes;
}

/// <summary>
/// The fused graph the service serves (members fused, identical computation merged) against the members as an
/// inference server runs an ensemble of complete models: one after another, and side by side. Single-threaded
/// sessions, turns taken in alternation so drift on the machine falls on all three alike.
/// </summary>
internal static class FusionBenchmark
{
    public static IReadOnlyList<FusionResult> Run(BenchmarkModel model, IReadOnlyList<int> batchSizes, TimeSpan perBatch, bool cuda, Action<string> progress)
    {
        if (model.Members.Count < 2)
        {
            return [];
        }

        var paths = model.Members.Select(m => Path.Combine(model.VersionDirectory, m)).ToList();
        var fusedBytes = new OnnxModel(ModelFusion.Fuse(
            [.. paths.Select(p => (Path.GetFileNameWithoutExtension(p), OnnxModel.Load(p).Proto))],
            new FuseOptions { DeduplicateComputation = true })).ToBytes();
        using var options = RawOnnxBenchmark.Options(1, cuda);
        using var fused = new InferenceSession(fusedBytes, options);
        var members = paths.Select(p => new InferenceSession(p, options)).ToList();
        try
        {
            var rowShape = fused.InputMetadata[model.FeatureInput].Dimensions.Skip(1).Select(d => (long)d).ToArray();
            var rowLength = (int)rowShape.Aggregate(1L, (a, d) => a * d);
            var reference = model.ReferenceRows(rowLength);
            var results = new List<FusionResult>();
            foreach (var batch in batchSizes)
            {
                var data = new float[batch * rowLength];
                for (var i = 0; i < data.Length; i++)
                {
                    data[i] = reference[i % reference.Length];
                }

                using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(), [batch, .. rowShape]);
                using var runOptions = new RunOptions();
                void RunWhole(InferenceSession session)
                {
                    using var _ = session.Run(runOptions, [model.FeatureInput], [input], session.OutputNames);
                }

                var fusedTimes = new List<double>();
                var sequentialTimes = new List<double>();
                var sideBySideTimes = new List<double>();
                RunWhole(fused);
                members.ForEach(RunWhole);
                var end = Stopwatch.GetTimestamp() + (long)(perBatch.TotalSeconds * Stopwatch.Frequency);
                do
                {
                    fusedTimes.Add(Time(() => RunWhole(fused)));
                    sequentialTimes.Add(Time(() => members.ForEach(RunWhole)));
                    sideBySideTimes.Add(Time(() => Parallel.ForEach(members, new ParallelOptions { MaxDegreeOfParallelism = members.Count }, RunWhole)));
                }
                while (Stopwatch.GetTimestamp() < end || fusedTimes.Count < 3);

                var result = new FusionResult(model.Name, batch, Median(fusedTimes), Median(sequentialTimes), Median(sideBySideTimes),
                    fusedBytes.Length, paths.Sum(p => new FileInfo(p).Length));
                progress($"  fusion {model.Name} batch {batch}: fused {result.FusedMilliseconds:0.0} ms, members one after another {result.SequentialMilliseconds:0.0} ms " +
                    $"({result.SequentialRatio:0.00}x), side by side {result.SideBySideMilliseconds:0.0} ms ({result.SideBySideRatio:0.00}x); " +
                    $"{result.FusedBytes / 1e6:0.0} MB vs {result.MemberBytes / 1e6:0.0} MB ({result.SizeRatio:0.00}x)");
                results.Add(result);
            }

            return results;
        }
        finally
        {
            members.ForEach(m => m.Dispose());
        }
    }

    private static double Time(Action action)
    {
        var start = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
