using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using MultiHeadServe.Features;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Api;

/// <summary>
/// Triton's classification extension: an output asked for with the parameter <c>classification: n</c> comes back as
/// its <c>n</c> highest values per row instead of the raw tensor, a BYTES tensor of shape <c>[rows, n]</c> whose
/// elements read <c>value:index:label</c> (the label from the labels file of the head that reads the output; without
/// one, <c>value:index</c>). Highest value first, ties by the lower index; <c>n</c> beyond the output's width gives
/// every class. The tensor is kept in the protocol's binary form for BYTES (each element a 4-byte little-endian
/// length and its UTF-8 bytes), which is what binary REST outputs and gRPC's raw contents send as they are.
/// </summary>
internal static class OpenInferenceClassification
{
    public const string Parameter = "classification";

    /// <summary>The requested count, checked: 1 or more, for an FP32 output (the values ranked are the output's own).</summary>
    public static int Check(LoadedModel model, string output, long count, string field)
    {
        if (count < 1)
        {
            throw FeatureRequestException.BadField(field, $"classification is the number of classes to return per row, 1 or more; got {count}.");
        }

        var type = model.Session.Outputs.First(o => o.Name == output).ElementType;
        if (type != TensorElementType.Float32)
        {
            throw FeatureRequestException.BadField(field,
                $"classification ranks an FP32 output's values; '{output}' is {OpenInferenceApi.DataType(type)}.");
        }

        return (int)Math.Min(count, int.MaxValue);
    }

    /// <summary>The <paramref name="count"/> highest values of each row of <paramref name="tensor"/> as a BYTES tensor.</summary>
    public static OutputTensor Classify(LoadedModel model, OutputTensor tensor, int count)
    {
        var labels = Labels(model, tensor.Name);
        var batched = tensor.Shape.Length >= 2;
        var rows = batched ? (int)tensor.Shape[0] : 1;
        var values = tensor.Data.Span;
        var width = rows == 0 ? 0 : values.Length / rows;
        var n = Math.Min(count, width);
        var order = new int[width];
        var bytes = new ArrayBufferWriter<byte>(Math.Max(16, rows * n * (labels is null ? 16 : 32)));
        for (var row = 0; row < rows; row++)
        {
            var rowValues = values.Slice(row * width, width);
            for (var i = 0; i < width; i++)
            {
                order[i] = i;
            }

            // Highest first; NaN ranks lowest (float's own order); equal values keep the lower index first.
            var ranked = rowValues.ToArray();
            Array.Sort(order, (a, b) => ranked[b].CompareTo(ranked[a]) is var byValue && byValue != 0 ? byValue : a.CompareTo(b));
            for (var k = 0; k < n; k++)
            {
                var index = order[k];
                var text = ranked[index].ToString(CultureInfo.InvariantCulture) + ":" + index.ToString(CultureInfo.InvariantCulture) +
                    (labels is not null && index < labels.Count ? ":" + labels[index] : "");
                Write(bytes, text);
            }
        }

        return new OutputTensor(tensor.Name, ReadOnlyMemory<float>.Empty, batched ? [rows, n] : [n])
        {
            ElementType = TensorElementType.String,
            RawData = bytes.WrittenMemory,
        };
    }

    /// <summary>The elements of a BYTES tensor in the protocol's binary form.</summary>
    public static IEnumerable<ReadOnlyMemory<byte>> Elements(ReadOnlyMemory<byte> raw)
    {
        var offset = 0;
        while (offset < raw.Length)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(raw.Span[offset..]);
            yield return raw.Slice(offset + 4, length);
            offset += 4 + length;
        }
    }

    /// <summary>The labels of the served head that reads <paramref name="output"/>, if it has a labels file.</summary>
    private static IReadOnlyList<string>? Labels(LoadedModel model, string output)
    {
        foreach (var head in model.ServedHeads)
        {
            if (head.Output == output && model.Labels.TryGetValue(head.Name, out var labels))
            {
                return labels;
            }
        }

        return null;
    }

    private static void Write(ArrayBufferWriter<byte> bytes, string text)
    {
        var length = Encoding.UTF8.GetByteCount(text);
        var span = bytes.GetSpan(4 + length);
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)length);
        Encoding.UTF8.GetBytes(text, span[4..]);
        bytes.Advance(4 + length);
    }
}
