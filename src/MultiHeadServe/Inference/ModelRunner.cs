using System.Buffers;
using System.Diagnostics;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Inference;

/// <summary>
/// Runs one model's session for a set of rows and splits the outputs back per request. The engine side of
/// the request path: it knows ONNX Runtime, never HTTP. Thread-safe (ONNX Runtime allows concurrent runs).
/// </summary>
public sealed class ModelRunner(LoadedModel model, ServeMetrics metrics)
{
    public LoadedModel Model => model;

    internal ServeMetrics Metrics => metrics;

    /// <summary>
    /// One session run over the concatenated rows of <paramref name="parts"/>; returns, per part, its own
    /// rows of each output in <paramref name="outputNames"/>.
    /// </summary>
    public (InferenceOutputs[] PerPart, double RunMilliseconds) Run(IReadOnlyList<ReadOnlyMemory<float>> parts, IReadOnlyList<string> outputNames, CancellationToken cancellationToken)
    {
        var inputStart = Stopwatch.GetTimestamp();
        var rowLength = model.RowLength;
        var rowsPerPart = new int[parts.Count];
        var totalRows = 0;
        for (var p = 0; p < parts.Count; p++)
        {
            rowsPerPart[p] = parts[p].Length / rowLength;
            totalRows += rowsPerPart[p];
        }

        float[]? pooled = null;
        ReadOnlyMemory<float> tensor;
        if (parts.Count == 1)
        {
            tensor = parts[0];
        }
        else
        {
            // Stacks the requests into one tensor: the only copy of the inputs, into a pooled buffer.
            pooled = ArrayPool<float>.Shared.Rent(totalRows * rowLength);
            var offset = 0;
            foreach (var part in parts)
            {
                part.Span.CopyTo(pooled.AsSpan(offset));
                offset += part.Length;
            }

            tensor = pooled.AsMemory(0, totalRows * rowLength);
        }

        try
        {
            var shape = new long[model.RowShape.Count + 1];
            shape[0] = totalRows;
            for (var d = 0; d < model.RowShape.Count; d++)
            {
                shape[d + 1] = model.RowShape[d];
            }

            var session = model.Sessions.For(outputNames);
            var maxRows = Math.Max(1, model.Manifest.Batching.MaxBatchSize);
            if (totalRows > maxRows && RowsAreOutputBatch(session, outputNames))
            {
                return RunInSlices(session, tensor, shape, totalRows, maxRows, outputNames, rowsPerPart, inputStart, cancellationToken);
            }

            var start = Stopwatch.GetTimestamp();
            var result = session.Run(model.FeatureInput.Name, tensor, shape, outputNames, cancellationToken);
            var end = Stopwatch.GetTimestamp();
            var runMs = Stopwatch.GetElapsedTime(start, end).TotalMilliseconds;
            metrics.RecordRun(model.Name, totalRows, runMs);
            var split = Split(result, outputNames, rowsPerPart);
            var input = ModelStatistics.Nanoseconds(inputStart, start);
            var infer = ModelStatistics.Nanoseconds(start, end);
            var output = ModelStatistics.Nanoseconds(end, Stopwatch.GetTimestamp());
            model.Statistics.RecordExecution(totalRows, input, infer, output);
            model.Statistics.RecordCompute(parts.Count, input, infer, output);
            return (split, runMs);
        }
        finally
        {
            if (pooled is not null)
            {
                ArrayPool<float>.Shared.Return(pooled);
            }
        }
    }

    /// <summary>One request's rows in a run of their own: the unbatched path, and a batcher's request that found an instance idle.</summary>
    public InferenceResult RunAlone(ReadOnlyMemory<float> rows, IReadOnlyList<string> outputNames, CancellationToken cancellationToken)
    {
        var (perPart, runMs) = Run([rows], outputNames, cancellationToken);
        metrics.RecordQueueWait(model.Name, 0);
        model.Statistics.RecordQueue(0);
        return new InferenceResult(perPart[0].Outputs, 0, runMs, rows.Length / model.RowLength);
    }

    /// <summary>Every output asked for has the batch as its first dimension, so runs over slices of the rows can be stacked again.</summary>
    private static bool RowsAreOutputBatch(ModelSession session, IReadOnlyList<string> outputNames)
    {
        foreach (var name in outputNames)
        {
            if (session.Outputs.FirstOrDefault(o => o.Name == name) is not { HasDynamicBatch: true })
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// A request of more rows than the model's maxBatchSize, in runs of at most that many rows, one after another:
    /// the runtime's memory for activations grows to the largest run it has seen and keeps it, so one request of 256
    /// images in one run would hold hundreds of MB for the life of the version. The outputs are stacked again.
    /// </summary>
    private (InferenceOutputs[] PerPart, double RunMilliseconds) RunInSlices(
        ModelSession session, ReadOnlyMemory<float> tensor, long[] shape, int totalRows, int maxRows, IReadOnlyList<string> outputNames,
        int[] rowsPerPart, long inputStart, CancellationToken cancellationToken)
    {
        var rowLength = model.RowLength;
        var slices = new List<SessionOutputs>((totalRows + maxRows - 1) / maxRows);
        var runMs = 0.0;
        var input = ModelStatistics.Nanoseconds(inputStart, Stopwatch.GetTimestamp());
        var infer = 0L;
        for (var first = 0; first < totalRows; first += maxRows)
        {
            var rows = Math.Min(maxRows, totalRows - first);
            var sliceShape = (long[])shape.Clone();
            sliceShape[0] = rows;
            var start = Stopwatch.GetTimestamp();
            slices.Add(session.Run(model.FeatureInput.Name, tensor.Slice(first * rowLength, rows * rowLength), sliceShape, outputNames, cancellationToken));
            var end = Stopwatch.GetTimestamp();
            var ms = Stopwatch.GetElapsedTime(start, end).TotalMilliseconds;
            metrics.RecordRun(model.Name, rows, ms);
            // Each slice is a run of its own size; stacking the outputs again is the request's output time, below.
            model.Statistics.RecordExecution(rows, first == 0 ? input : 0, ModelStatistics.Nanoseconds(start, end), 0);
            infer += ModelStatistics.Nanoseconds(start, end);
            runMs += ms;
        }

        var outputStart = Stopwatch.GetTimestamp();

        var data = new float[outputNames.Count][];
        var shapes = new long[outputNames.Count][];
        var raw = slices[0].RawData is null ? null : new byte[]?[outputNames.Count];
        for (var o = 0; o < outputNames.Count; o++)
        {
            shapes[o] = (long[])slices[0].Shapes[o].Clone();
            shapes[o][0] = totalRows;
            data[o] = Stack(slices.Select(s => s.Data[o]));
            if (raw is not null && slices[0].RawData![o] is not null)
            {
                raw[o] = Stack(slices.Select(s => s.RawData![o]!));
            }
        }

        var stacked = new SessionOutputs(data, shapes) { ElementTypes = slices[0].ElementTypes, RawData = raw };
        var split = Split(stacked, outputNames, rowsPerPart);
        model.Statistics.RecordCompute(rowsPerPart.Length, input, infer, ModelStatistics.Nanoseconds(outputStart, Stopwatch.GetTimestamp()));
        return (split, runMs);
    }

    private static T[] Stack<T>(IEnumerable<T[]> parts)
    {
        var all = parts.ToList();
        var stacked = new T[all.Sum(p => p.Length)];
        var offset = 0;
        foreach (var part in all)
        {
            part.CopyTo(stacked, offset);
            offset += part.Length;
        }

        return stacked;
    }

    /// <summary>Each part's rows of each output: slices of the run's own arrays, not copies.</summary>
    private static InferenceOutputs[] Split(SessionOutputs result, IReadOnlyList<string> outputNames, int[] rowsPerPart)
    {
        var perPart = new InferenceOutputs[rowsPerPart.Length];
        for (var p = 0; p < perPart.Length; p++)
        {
            perPart[p] = new InferenceOutputs(new Dictionary<string, OutputTensor>(outputNames.Count, StringComparer.Ordinal));
        }

        for (var o = 0; o < outputNames.Count; o++)
        {
            var data = result.Data[o];
            var shape = result.Shapes[o];
            var totalRows = shape.Length == 0 ? 1 : (int)shape[0];
            var width = totalRows == 0 ? 0 : data.Length / totalRows;
            var raw = result.RawData?[o];
            var rawWidth = raw is null || totalRows == 0 ? 0 : raw.Length / totalRows;
            var elementType = result.ElementTypes?[o] ?? TensorElementType.Float32;
            var offset = 0;
            for (var p = 0; p < perPart.Length; p++)
            {
                var rows = rowsPerPart[p];
                var partShape = shape;
                if (perPart.Length > 1 && partShape.Length > 0)
                {
                    partShape = (long[])shape.Clone();
                    partShape[0] = rows;
                }

                perPart[p].Outputs[outputNames[o]] = raw is null
                    ? new OutputTensor(outputNames[o], data.AsMemory(offset * width, rows * width), partShape)
                    : new OutputTensor(outputNames[o], ReadOnlyMemory<float>.Empty, partShape)
                    {
                        ElementType = elementType,
                        RawData = raw.AsMemory(offset * rawWidth, rows * rawWidth),
                    };
                offset += rows;
            }
        }

        return perPart;
    }
}

/// <summary>Per ONNX output name, one request's rows.</summary>
public sealed record InferenceOutputs(Dictionary<string, OutputTensor> Outputs);
