using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using MultiHeadServe.Benchmarks.Models;
using MultiHeadServe.Onnx;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace MultiHeadServe.Benchmarks.Raw;

/// <summary>One head of a multi-head model through the graph pruned to it, against the whole graph, at one batch size.</summary>
/// <param name="Model">The model.</param>
/// <param name="Head">The head kept.</param>
/// <param name="BatchSize">Rows per run.</param>
/// <param name="FullMilliseconds">Median time of a run of the whole graph.</param>
/// <param name="PrunedMilliseconds">Median time of a run of the pruned graph.</param>
/// <param name="MaxDifference">Largest difference between the head's outputs from the two graphs.</param>
internal sealed record PrunedHeadResult(string Model, string Head, int BatchSize, double FullMilliseconds, double PrunedMilliseconds, double MaxDifference)
{
    public double Ratio => PrunedMilliseconds / FullMilliseconds;
}

/// <summary>
/// What the service's head-subset sessions save: the model's graph (members fused as the service fuses them) and
/// the same graph pruned to one head's output, each a single-threaded session, run in turns on the same rows.
/// </summary>
internal static class PrunedHeadBenchmark
{
    public static PrunedHeadResult? Run(BenchmarkModel model, int batchSize, TimeSpan duration, Action<string> progress)
    {
        if (model.ServedHeads.Count < 2)
        {
            return null;
        }

        var graph = model.Members.Count == 0
            ? OnnxModel.Load(Path.Combine(model.VersionDirectory, "model.onnx")).Proto
            : ModelFusion.Fuse([.. model.Members.Select(m => (Path.GetFileNameWithoutExtension(m), OnnxModel.Load(Path.Combine(model.VersionDirectory, m)).Proto))],
                new FuseOptions { DeduplicateComputation = true });
        var head = model.ServedHeads[0];
        var pruned = ModelPruning.Prune(graph, [head.Output]);
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var full = new InferenceSession(new OnnxModel(graph).ToBytes(), options);
        using var one = new InferenceSession(new OnnxModel(pruned).ToBytes(), options);

        var rowShape = full.InputMetadata[model.FeatureInput].Dimensions.Skip(1).Select(d => (long)d).ToArray();
        var rowLength = (int)rowShape.Aggregate(1L, (a, d) => a * d);
        var reference = model.ReferenceRows(rowLength);
        var data = new float[batchSize * rowLength];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = reference[i % reference.Length];
        }

        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(), [batchSize, .. rowShape]);
        using var runOptions = new RunOptions();
        string[] inputNames = [model.FeatureInput];
        OrtValue[] inputs = [input];
        float[] Output(InferenceSession session, IReadOnlyCollection<string> outputs)
        {
            using var results = session.Run(runOptions, inputNames, inputs, outputs);
            return results[0].GetTensorDataAsSpan<float>().ToArray();
        }

        var fromFull = Output(full, [head.Output]);
        var fromPruned = Output(one, [head.Output]);
        var difference = fromFull.Zip(fromPruned).Max(p => Math.Abs(p.First - p.Second));

        // Turns of about 50 ms each, so drift on the machine falls on both alike.
        var fullTimes = new List<double>();
        var prunedTimes = new List<double>();
        var end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < end)
        {
            Measure(() => Output(full, full.OutputNames), fullTimes);
            Measure(() => Output(one, one.OutputNames), prunedTimes);
        }

        var result = new PrunedHeadResult(model.Name, head.Name, batchSize, Median(fullTimes), Median(prunedTimes), difference);
        progress($"  pruned {model.Name}: head {head.Name} alone at batch {batchSize}: {result.PrunedMilliseconds:0.000} ms vs the whole graph {result.FullMilliseconds:0.000} ms " +
            $"({result.Ratio:0.00}x), outputs differ by at most {difference:g3}");
        return result;
    }

    private static void Measure(Action run, List<double> times)
    {
        var turnEnd = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 20);
        while (Stopwatch.GetTimestamp() < turnEnd)
        {
            var start = Stopwatch.GetTimestamp();
            run();
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
