using System.Buffers;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Metadata;
using MultiHeadServe.Features;
using MultiHeadServe.Heads;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Api;

/// <summary>
/// The REST body of <c>/v2/.../infer</c>: a JSON request, optionally followed by binary tensor data (Triton's binary
/// tensor data extension: <c>Inference-Header-Content-Length</c> gives the JSON's length, each binary input declares
/// <c>binary_data_size</c>, outputs ask for binary with <c>binary_data</c> or the request-wide
/// <c>binary_data_output</c>). Every size a client declares is checked against what the body holds before a value is
/// allocated.
/// </summary>
internal static class OpenInferenceRest
{
    /// <summary>The header giving the length of the JSON part of a body that carries binary tensor data.</summary>
    public const string HeaderLength = "Inference-Header-Content-Length";

    /// <summary>Where the JSON ends: the whole body, or the length the extension's header gives.</summary>
    public static int JsonLength(HttpRequest request, int bodyLength)
    {
        var header = request.Headers[HeaderLength];
        if (header.Count == 0)
        {
            return bodyLength;
        }

        if (header.Count != 1 || !int.TryParse(header[0], NumberStyles.None, CultureInfo.InvariantCulture, out var length) || length > bodyLength)
        {
            throw FeatureRequestException.BadField(HeaderLength,
                $"{HeaderLength} must be one whole number of bytes, at most the body's {bodyLength}; got '{header}'.");
        }

        return length;
    }

    /// <summary>
    /// Reads the request: its one input tensor (JSON data or binary data from <paramref name="binary"/>), the outputs
    /// to compute and, for each, whether it is answered as binary data.
    /// </summary>
    public static RestInferRequest Read(JsonElement root, ReadOnlySpan<byte> binary, LoadedModel model, int maxRows, int jsonBytes)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("inputs", out var inputs) || inputs.ValueKind != JsonValueKind.Array)
        {
            throw FeatureRequestException.BadField("inputs", "The body must be an object with an 'inputs' array of tensors.");
        }

        var id = root.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.String ? idElement.GetString() : null;
        var binaryOutput = BoolParameter(root, "binary_data_output", "parameters.binary_data_output") ?? false;
        if (inputs.GetArrayLength() != 1)
        {
            OpenInferenceCall.CheckInput(model, inputs.GetArrayLength(), null, null, null, maxRows, acceptsFp64: true);
        }

        var input = inputs[0];
        if (input.ValueKind != JsonValueKind.Object)
        {
            throw FeatureRequestException.BadField("inputs[0]", $"an input tensor is an object with name, datatype, shape and data; got {input.ValueKind.ToString().ToLowerInvariant()}.");
        }

        var name = input.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        var datatype = input.TryGetProperty("datatype", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        var shape = Shape(input);
        var binarySize = Int64Parameter(input, "binary_data_size", "inputs[0].parameters.binary_data_size");
        var count = OpenInferenceCall.CheckInput(model, 1, name, datatype, shape, maxRows, acceptsFp64: binarySize is null);

        float[] values;
        if (binarySize is { } size)
        {
            if (input.TryGetProperty("data", out _))
            {
                throw FeatureRequestException.BadField("inputs[0].data", "A tensor sent as binary data (binary_data_size) carries no 'data'.");
            }

            if (size != binary.Length)
            {
                throw FeatureRequestException.BadField("inputs[0].parameters.binary_data_size",
                    $"binary_data_size is {size}; the body carries {binary.Length} bytes after its {jsonBytes}-byte JSON header ({HeaderLength}).");
            }

            values = OpenInferenceCall.ReadRaw(binary, shape!, count, "inputs[0].parameters.binary_data_size", "inputs[0].binary_data");
        }
        else
        {
            if (binary.Length > 0)
            {
                throw FeatureRequestException.BadField(HeaderLength,
                    $"The body carries {binary.Length} bytes after its JSON header, but no input declares binary_data_size.");
            }

            // Every JSON number takes at least two bytes (a digit and a separator): a few bytes declaring a huge shape cost nothing.
            if (count > jsonBytes / 2)
            {
                throw FeatureRequestException.BadField("inputs[0].shape",
                    $"shape {OpenInferenceCall.Format(shape!)} declares {count} values; a body of {jsonBytes} bytes holds at most {jsonBytes / 2}.");
            }

            if (!input.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
            {
                throw FeatureRequestException.BadField("inputs[0].data", "data must be an array of numbers (flat, row-major, or nested).");
            }

            values = new float[count];
            var written = 0;
            Flatten(data, values, ref written, "inputs[0].data");
            if (written != count)
            {
                throw FeatureRequestException.BadField("inputs[0].data", $"shape {OpenInferenceCall.Format(shape!)} needs {count} values; data has {written}.");
            }
        }

        List<string>? requested = null;
        List<bool>? binaryFlags = null;
        List<long?>? classifications = null;
        if (root.TryGetProperty("outputs", out var outputs) && outputs.ValueKind == JsonValueKind.Array && outputs.GetArrayLength() > 0)
        {
            requested = [];
            binaryFlags = [];
            classifications = [];
            var i = 0;
            foreach (var output in outputs.EnumerateArray())
            {
                requested.Add(output.ValueKind == JsonValueKind.Object && output.TryGetProperty("name", out var o) && o.ValueKind == JsonValueKind.String ? o.GetString()! : "");
                binaryFlags.Add(output.ValueKind == JsonValueKind.Object
                    ? BoolParameter(output, "binary_data", $"outputs[{i}].parameters.binary_data") ?? binaryOutput
                    : binaryOutput);
                classifications.Add(output.ValueKind == JsonValueKind.Object && Parameter(output, OpenInferenceClassification.Parameter, out var classes)
                    ? classes.ValueKind == JsonValueKind.Number && classes.TryGetInt64(out var classCount)
                        ? classCount
                        : throw FeatureRequestException.BadField($"outputs[{i}].parameters.classification",
                            $"classification is a whole number of classes; got {classes.GetRawText()}.")
                    : null);
                i++;
            }
        }

        var names = OpenInferenceCall.Outputs(model, requested);
        var counts = new int[names.Count];
        for (var o = 0; o < counts.Length; o++)
        {
            counts[o] = classifications?[o] is { } classes
                ? OpenInferenceClassification.Check(model, names[o], classes, $"outputs[{o}].parameters.classification")
                : 0;
        }

        return new RestInferRequest(id, values, names, binaryFlags ?? [.. names.Select(_ => binaryOutput)], counts);
    }

    private static long[]? Shape(JsonElement input)
    {
        if (!input.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw FeatureRequestException.BadField("inputs[0].shape", $"shape is an array of dimensions; got {shapeElement.ValueKind.ToString().ToLowerInvariant()}.");
        }

        var shape = new long[shapeElement.GetArrayLength()];
        var i = 0;
        foreach (var dimension in shapeElement.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out var value))
            {
                throw FeatureRequestException.BadField($"inputs[0].shape[{i}]",
                    $"Dimension {i} is {(dimension.ValueKind == JsonValueKind.Number ? "not a whole number of 64 bits" : $"a {dimension.ValueKind.ToString().ToLowerInvariant()}")}; a dimension is a whole number.");
            }

            shape[i++] = value;
        }

        return shape;
    }

    private static bool? BoolParameter(JsonElement owner, string name, string field)
    {
        if (!Parameter(owner, name, out var value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw FeatureRequestException.BadField(field, $"{name} is a boolean; got {value.GetRawText()}."),
        };
    }

    private static long? Int64Parameter(JsonElement owner, string name, string field)
    {
        if (!Parameter(owner, name, out var value))
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) && number >= 0
            ? number
            : throw FeatureRequestException.BadField(field, $"{name} is a whole number of bytes; got {value.GetRawText()}.");
    }

    private static bool Parameter(JsonElement owner, string name, out JsonElement value)
    {
        value = default;
        if (!owner.TryGetProperty("parameters", out var parameters))
        {
            return false;
        }

        if (parameters.ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        return parameters.TryGetProperty(name, out value);
    }

    private static void Flatten(JsonElement element, float[] values, ref int written, string field)
    {
        foreach (var item in element.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.Array)
            {
                Flatten(item, values, ref written, field);
                continue;
            }

            if (item.ValueKind != JsonValueKind.Number)
            {
                throw FeatureRequestException.BadField($"{field}[{written}]", $"expected a number, got {item.ValueKind.ToString().ToLowerInvariant()} (NaN and Infinity are not accepted).");
            }

            var value = (float)item.GetDouble();
            if (!float.IsFinite(value))
            {
                throw FeatureRequestException.BadField($"{field}[{written}]", $"{item.GetRawText()} is outside the float32 range.");
            }

            if (written == values.Length)
            {
                throw FeatureRequestException.BadField(field, $"data has more than the {values.Length} values the shape needs.");
            }

            values[written++] = value;
        }
    }
}

/// <summary>A REST infer request once read: the input rows, the outputs to compute and which of them go back as binary data.</summary>
/// <remarks><paramref name="Classifications"/>: per output, the classes asked for with the classification extension (0: the tensor itself).</remarks>
internal sealed record RestInferRequest(string? Id, float[] Rows, IReadOnlyList<string> Outputs, IReadOnlyList<bool> BinaryOutputs, IReadOnlyList<int> Classifications);

/// <summary>
/// The infer response, written straight to the body: JSON, with each output asked for as binary data described by its
/// <c>binary_data_size</c> and its bytes following the JSON in output order (then <c>application/octet-stream</c> with
/// <c>Inference-Header-Content-Length</c>). Values go out as the run wrote them, so binary outputs are bit-exact and
/// JSON floats use the shortest text that reads back to the same float.
/// </summary>
public sealed class OpenInferenceResult : IResult, IEndpointMetadataProvider
{
    private readonly string _model;
    private readonly string _version;
    private readonly string? _id;
    private readonly IReadOnlyList<string> _outputs;
    private readonly IReadOnlyList<bool> _binary;
    private readonly OutputTensor[] _tensors;

    internal OpenInferenceResult(LoadedModel model, RestInferRequest request, InferenceResult result)
    {
        _model = model.Name;
        _version = model.Version.ToString(CultureInfo.InvariantCulture);
        _id = request.Id;
        _outputs = request.Outputs;
        _binary = request.BinaryOutputs;
        _tensors = OpenInferenceCall.Tensors(model, request.Outputs, request.Classifications, result);
    }

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        var json = new ArrayBufferWriter<byte>(256 + (_outputs.Count * 64));
        long binaryBytes = 0;
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            writer.WriteString("model_name", _model);
            writer.WriteString("model_version", _version);
            if (_id is not null)
            {
                writer.WriteString("id", _id);
            }

            writer.WriteStartArray("outputs");
            for (var o = 0; o < _outputs.Count; o++)
            {
                var tensor = _tensors[o];
                writer.WriteStartObject();
                writer.WriteString("name", tensor.Name);
                writer.WriteString("datatype", OpenInferenceCall.Datatype(tensor));
                writer.WriteStartArray("shape");
                foreach (var dimension in tensor.Shape)
                {
                    writer.WriteNumberValue(dimension);
                }

                writer.WriteEndArray();
                if (_binary[o])
                {
                    var size = OpenInferenceCall.RawBytes(tensor).Length;
                    binaryBytes += size;
                    writer.WriteStartObject("parameters");
                    writer.WriteNumber("binary_data_size", size);
                    writer.WriteEndObject();
                }
                else
                {
                    writer.WriteStartArray("data");
                    WriteValues(writer, tensor);
                    writer.WriteEndArray();
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        if (_binary.Any(b => b))
        {
            response.ContentType = "application/octet-stream";
            response.Headers[OpenInferenceRest.HeaderLength] = json.WrittenCount.ToString(CultureInfo.InvariantCulture);
        }
        else
        {
            response.ContentType = "application/json; charset=utf-8";
        }

        response.ContentLength = json.WrittenCount + binaryBytes;
        var body = response.BodyWriter;
        body.Write(json.WrittenSpan);
        for (var o = 0; o < _outputs.Count; o++)
        {
            if (_binary[o])
            {
                body.Write(OpenInferenceCall.RawBytes(_tensors[o]));
            }
        }

        await body.FlushAsync(httpContext.RequestAborted);
    }

    private static void WriteValues(Utf8JsonWriter writer, OutputTensor tensor)
    {
        var raw = tensor.RawData.Span;
        switch (tensor.ElementType)
        {
            case TensorElementType.Float32:
                foreach (var value in tensor.Data.Span)
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.Bool:
                foreach (var value in raw)
                {
                    writer.WriteBooleanValue(value != 0);
                }

                break;
            case TensorElementType.Int64:
                foreach (var value in MemoryMarshal.Cast<byte, long>(raw))
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.Int32:
                foreach (var value in MemoryMarshal.Cast<byte, int>(raw))
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.Int16:
                foreach (var value in MemoryMarshal.Cast<byte, short>(raw))
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.Int8:
                foreach (var value in MemoryMarshal.Cast<byte, sbyte>(raw))
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.UInt8:
                foreach (var value in raw)
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.UInt16:
                foreach (var value in MemoryMarshal.Cast<byte, ushort>(raw))
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.UInt32:
                foreach (var value in MemoryMarshal.Cast<byte, uint>(raw))
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.UInt64:
                foreach (var value in MemoryMarshal.Cast<byte, ulong>(raw))
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.Float64:
                foreach (var value in MemoryMarshal.Cast<byte, double>(raw))
                {
                    writer.WriteNumberValue(value);
                }

                break;
            case TensorElementType.Float16:
                foreach (var value in MemoryMarshal.Cast<byte, Half>(raw))
                {
                    writer.WriteNumberValue((float)value);
                }

                break;
            case TensorElementType.String:
                foreach (var element in OpenInferenceClassification.Elements(tensor.RawData))
                {
                    writer.WriteStringValue(element.Span);
                }

                break;
            default:
                throw new InvalidOperationException($"Output '{tensor.Name}' is {tensor.ElementType.ToName()}, which JSON data cannot carry; ask for it as binary data.");
        }
    }

    /// <summary>For the OpenAPI document: 200 with the JSON response (or the binary extension's body).</summary>
    public static void PopulateMetadata(MethodInfo method, EndpointBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Metadata.Add(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, typeof(V2InferResponse), ["application/json", "application/octet-stream"]));
    }
}
