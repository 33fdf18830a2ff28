using MultiHeadServe.Onnx.Proto;

namespace MultiHeadServe.Onnx;

/// <summary>Turns the ONNX type of a value into the <see cref="ValueSignature"/> callers read.</summary>
internal static class ValueSignatures
{
    public static ValueSignature From(ValueInfoProto value)
    {
        var type = value.Type;
        var (elementType, shape) = type?.ValueCase switch
        {
            TypeProto.ValueOneofCase.TensorType =>
                ((TensorElementType)type.TensorType.ElemType, Dimensions(type.TensorType.Shape)),
            TypeProto.ValueOneofCase.SparseTensorType =>
                ((TensorElementType)type.SparseTensorType.ElemType, Dimensions(type.SparseTensorType.Shape)),
            _ => (TensorElementType.Undefined, null),
        };
        return new ValueSignature(value.Name, Describe(type), elementType, shape);
    }

    /// <summary>A readable type such as <c>tensor(float32)</c> or <c>seq(map(int64,tensor(float32)))</c>.</summary>
    public static string Describe(TypeProto? type) => type?.ValueCase switch
    {
        TypeProto.ValueOneofCase.TensorType =>
            $"tensor({((TensorElementType)type.TensorType.ElemType).ToName()})",
        TypeProto.ValueOneofCase.SparseTensorType =>
            $"sparse_tensor({((TensorElementType)type.SparseTensorType.ElemType).ToName()})",
        TypeProto.ValueOneofCase.SequenceType => $"seq({Describe(type.SequenceType.ElemType)})",
        TypeProto.ValueOneofCase.OptionalType => $"optional({Describe(type.OptionalType.ElemType)})",
        TypeProto.ValueOneofCase.MapType =>
            $"map({((TensorElementType)type.MapType.KeyType).ToName()},{Describe(type.MapType.ValueType)})",
        TypeProto.ValueOneofCase.OpaqueType =>
            $"opaque({string.Join('.', new[] { type.OpaqueType.Domain, type.OpaqueType.Name }.Where(part => part.Length > 0))})",
        _ => "unknown",
    };

    private static List<TensorDimension>? Dimensions(TensorShapeProto? shape) =>
        shape?.Dim.Select(dim => dim.ValueCase switch
        {
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => new TensorDimension(dim.DimValue, null),
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => new TensorDimension(null, dim.DimParam),
            _ => new TensorDimension(null, null),
        }).ToList();
}
