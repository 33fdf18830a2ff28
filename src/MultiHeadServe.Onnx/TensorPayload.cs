using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>Sizes of stored tensors.</summary>
internal static class TensorPayload
{
    /// <summary>
    /// The bytes the tensor's values occupy once loaded: element count times element width (sub-byte types
    /// packed), or the string bytes. Computed from the shape rather than from the storage field, so a tensor
    /// counts the same whether it is stored raw, typed or in an external file.
    /// </summary>
    public static long ByteCount(TensorProto tensor)
    {
        var type = (TensorElementType)tensor.DataType;
        if (type == TensorElementType.String)
        {
            return tensor.StringData.Sum(value => (long)value.Length);
        }

        var bits = type.BitWidth();
        var count = ElementCount(tensor.Dims);
        if (bits == 0 || count < 0)
        {
            // Unknown type or a malformed shape: report what is actually stored.
            return tensor.RawData.Length;
        }

        return checked((count * bits + 7) / 8);
    }

    public static long ByteCount(SparseTensorProto tensor) =>
        (tensor.Values is null ? 0 : ByteCount(tensor.Values)) + (tensor.Indices is null ? 0 : ByteCount(tensor.Indices));

    private static long ElementCount(IEnumerable<long> dims)
    {
        long count = 1;
        foreach (var dim in dims)
        {
            if (dim < 0)
            {
                return -1;
            }

            count = checked(count * dim);
        }

        return count;
    }
}
