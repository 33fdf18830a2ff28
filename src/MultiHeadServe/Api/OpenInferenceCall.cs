using System.Runtime.InteropServices;
using MultiHeadServe.Features;
using MultiHeadServe.Heads;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Api;

/// <summary>
/// The Open Inference Protocol's infer call, whatever carries it — REST with JSON data, REST with the binary tensor
/// extension, or gRPC with typed or raw contents: the rules about the input tensor and the requested outputs are
/// stated here once, and the run goes through the same batcher with the same telemetry as /v1. Client mistakes are
/// <see cref="FeatureRequestException"/>s (status and field), which REST answers with the protocol's error and gRPC
/// with the matching status code.
/// </summary>
internal static class OpenInferenceCall
{
    /// <summary>
    /// Extensions the server metadata announces: Triton's binary tensor data extension on REST, and its classification,
    /// statistics and model configuration extensions on REST and gRPC.
    /// </summary>
    public static readonly IReadOnlyList<string> Extensions = ["binary_tensor_data", "classification", "statistics", "model_configuration"];

    /// <summary>
    /// Checks a declared input tensor against the model and the budgets before anything is allocated, and returns the
    /// number of float32 values it holds. The model takes one FP32 tensor; <paramref name="acceptsFp64"/> lets JSON
    /// data be declared FP64 (JSON numbers carry no width; values are rounded to float32). The protocol converts no
    /// other datatype, FP16 included: a model whose input is FP32 is sent FP32.
    /// </summary>
    public static int CheckInput(LoadedModel model, int inputCount, string? name, string? datatype, IReadOnlyList<long>? shape, int maxRows, bool acceptsFp64)
    {
        if (inputCount != 1)
        {
            throw FeatureRequestException.BadField("inputs", $"The model takes one input tensor, '{model.FeatureInput.Name}'; got {inputCount}.");
        }

        if (name != model.FeatureInput.Name)
        {
            throw FeatureRequestException.BadField("inputs[0].name", $"The model's input is '{model.FeatureInput.Name}', not '{name}'.");
        }

        if (datatype != "FP32" && !(acceptsFp64 && datatype == "FP64"))
        {
            var accepted = acceptsFp64 ? "FP32 (FP64 JSON numbers are rounded to it)" : "FP32";
            throw FeatureRequestException.BadField("inputs[0].datatype",
                $"The input '{name}' is {accepted}; got '{datatype}'. The protocol converts no other datatype: send FP32.");
        }

        if (shape is null || shape.Count == 0)
        {
            throw FeatureRequestException.BadField("inputs[0].shape",
                $"The input '{name}' has no shape; it takes [-1, {string.Join(", ", model.RowShape)}].");
        }

        for (var i = 0; i < shape.Count; i++)
        {
            if (shape[i] < 0)
            {
                throw FeatureRequestException.BadField($"inputs[0].shape[{i}]", $"Dimension {i} is {shape[i]}; a dimension is never negative.");
            }
        }

        if (shape.Count != model.RowShape.Count + 1 || !shape.Skip(1).SequenceEqual(model.RowShape) || shape[0] < 1)
        {
            throw FeatureRequestException.BadField("inputs[0].shape",
                $"shape {Format(shape)} does not fit the input '{name}' [-1, {string.Join(", ", model.RowShape)}].");
        }

        if (shape[0] > maxRows)
        {
            throw FeatureRequestException.BadField("inputs[0].shape", $"{shape[0]} rows in one request; at most {maxRows} (Serve:MaxInstances).");
        }

        return checked((int)(shape[0] * model.RowLength));
    }

    /// <summary>The input's values from raw little-endian FP32 bytes, once their size is checked against the shape.</summary>
    /// <param name="bytes">The tensor's bytes.</param>
    /// <param name="shape">The declared shape, for messages.</param>
    /// <param name="count">The values the shape holds (from <see cref="CheckInput"/>).</param>
    /// <param name="sizeField">The field that gave the size, named when it disagrees with the shape.</param>
    /// <param name="valuesField">The values, named (with an index) when one is not a finite number.</param>
    public static float[] ReadRaw(ReadOnlySpan<byte> bytes, IReadOnlyList<long> shape, int count, string sizeField, string valuesField)
    {
        if (bytes.Length != (long)count * sizeof(float))
        {
            throw FeatureRequestException.BadField(sizeField,
                $"shape {Format(shape)} of FP32 needs {(long)count * sizeof(float)} bytes; the tensor has {bytes.Length}.");
        }

        var values = new float[count];
        bytes.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        if (!BitConverter.IsLittleEndian)
        {
            var words = MemoryMarshal.Cast<float, int>(values.AsSpan());
            System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(words, words);
        }

        CheckFinite(values, valuesField);
        return values;
    }

    /// <summary>NaN and infinities are refused on every wire, as JSON cannot carry them.</summary>
    public static void CheckFinite(ReadOnlySpan<float> values, string field)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                throw FeatureRequestException.BadField($"{field}[{i}]", $"{values[i]} is not a finite number (NaN and Infinity are not accepted).");
            }
        }
    }

    /// <summary>The outputs to compute: the requested ones, or every output of the model when none is named.</summary>
    public static IReadOnlyList<string> Outputs(LoadedModel model, IReadOnlyList<string>? requested)
    {
        if (requested is null || requested.Count == 0)
        {
            return model.Session.Outputs.Select(o => o.Name).ToList();
        }

        for (var i = 0; i < requested.Count; i++)
        {
            if (model.Session.OutputIndex(requested[i]) < 0)
            {
                throw FeatureRequestException.BadField($"outputs[{i}].name",
                    $"'{requested[i]}' is not an output of the model (outputs: {string.Join(", ", model.Session.Outputs.Select(x => x.Name))}).");
            }

            if (requested.Take(i).Contains(requested[i], StringComparer.Ordinal))
            {
                throw FeatureRequestException.BadField($"outputs[{i}].name", $"'{requested[i]}' is asked for twice.");
            }
        }

        return requested;
    }

    /// <summary>
    /// One run through the model's batcher (a subset of outputs runs the pruned graph); records rows, heads and timings
    /// in <paramref name="telemetry"/> for the request's log line and metrics.
    /// </summary>
    /// <exception cref="FeatureRequestException">429 when the model's queue is full.</exception>
    public static async Task<InferenceResult> RunAsync(InferenceService inference, LoadedModel model, float[] rows, IReadOnlyList<string> outputs,
        RequestTelemetry? telemetry, CancellationToken cancellationToken)
    {
        if (telemetry is not null)
        {
            telemetry.Rows = rows.Length / model.RowLength;
            telemetry.HeadsLabel = string.Join('+', outputs);
        }

        InferenceResult result;
        try
        {
            result = await inference.RunAsync(model, rows, outputs, cancellationToken);
        }
        catch (QueueFullException ex)
        {
            throw new FeatureRequestException(StatusCodes.Status429TooManyRequests, "Queue full", "model", ex.Message, TimeSpan.FromSeconds(1));
        }

        if (telemetry is not null)
        {
            telemetry.QueueMilliseconds = result.QueueMilliseconds;
            telemetry.InferenceMilliseconds = result.RunMilliseconds;
            telemetry.BatchRows = result.BatchRows;
        }

        return result;
    }

    /// <summary>
    /// The tensors a response carries, in <paramref name="outputs"/>' order: each output as the run wrote it, or its top
    /// classes where <paramref name="classifications"/> asks for them (<see cref="OpenInferenceClassification"/>).
    /// </summary>
    public static OutputTensor[] Tensors(LoadedModel model, IReadOnlyList<string> outputs, IReadOnlyList<int> classifications, InferenceResult result)
    {
        var tensors = new OutputTensor[outputs.Count];
        for (var o = 0; o < tensors.Length; o++)
        {
            var tensor = result.Outputs[outputs[o]];
            tensors[o] = classifications[o] > 0 ? OpenInferenceClassification.Classify(model, tensor, classifications[o]) : tensor;
        }

        return tensors;
    }

    /// <summary>The protocol's name of an output's datatype.</summary>
    public static string Datatype(OutputTensor tensor) => OpenInferenceApi.DataType(tensor.ElementType);

    /// <summary>An output's values as the protocol's raw bytes: little-endian, row-major, BOOL one byte each. Read in place.</summary>
    public static ReadOnlySpan<byte> RawBytes(OutputTensor tensor)
    {
        if (tensor.ElementType != TensorElementType.Float32)
        {
            return tensor.RawData.Span;
        }

        if (BitConverter.IsLittleEndian)
        {
            return MemoryMarshal.AsBytes(tensor.Data.Span);
        }

        var swapped = new byte[tensor.Data.Length * sizeof(float)];
        for (var i = 0; i < tensor.Data.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(swapped.AsSpan(i * sizeof(float)), tensor.Data.Span[i]);
        }

        return swapped;
    }

    public static string Format(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}
