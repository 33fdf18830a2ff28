namespace MultiHeadServe.Inference.Engine;

/// <summary>Tensor element types, numbered as ONNX's <c>TensorProto.DataType</c>.</summary>
public enum TensorElementType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    BFloat16 = 16,
}

/// <summary>Names of element types as manifests and APIs write them.</summary>
public static class TensorElementTypes
{
    /// <summary>The lower-case name used in manifests and APIs ("float32", "int64", ...).</summary>
    public static string Name(TensorElementType type) => type switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Float16 => "float16",
        TensorElementType.BFloat16 => "bfloat16",
        TensorElementType.Double => "float64",
        TensorElementType.UInt8 => "uint8",
        TensorElementType.Int8 => "int8",
        TensorElementType.UInt16 => "uint16",
        TensorElementType.Int16 => "int16",
        TensorElementType.Int32 => "int32",
        TensorElementType.Int64 => "int64",
        TensorElementType.UInt32 => "uint32",
        TensorElementType.UInt64 => "uint64",
        TensorElementType.Bool => "bool",
        TensorElementType.String => "string",
        TensorElementType.Complex64 => "complex64",
        TensorElementType.Complex128 => "complex128",
        _ => "undefined",
    };
}

/// <summary>
/// A graph input or output as the session reports it: the service's own description, so nothing outside
/// <c>Inference/</c> sees the engine's types. <see cref="Shape"/> holds -1 for a dynamic dimension;
/// <see cref="SymbolicDimensions"/> its name (e.g. "batch"), or "" where none was given.
/// </summary>
public sealed record TensorMetadata(
    string Name,
    TensorElementType ElementType,
    IReadOnlyList<long> Shape,
    IReadOnlyList<string> SymbolicDimensions)
{
    /// <summary>True when the first dimension is dynamic, i.e. the model accepts any batch size.</summary>
    public bool HasDynamicBatch => Shape.Count > 0 && Shape[0] < 0;
}
