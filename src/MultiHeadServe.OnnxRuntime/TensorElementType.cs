namespace MultiHeadServe.OnnxRuntime;

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

/// <summary>Maps CLR element types to ONNX element types for the tensors the binding creates.</summary>
public static class TensorElementTypes
{
    /// <summary>The ONNX element type of <typeparamref name="T"/>; throws for types the binding does not map.</summary>
    public static TensorElementType Of<T>()
        where T : unmanaged =>
        typeof(T) == typeof(float) ? TensorElementType.Float
        : typeof(T) == typeof(long) ? TensorElementType.Int64
        : typeof(T) == typeof(int) ? TensorElementType.Int32
        : typeof(T) == typeof(byte) ? TensorElementType.UInt8
        : typeof(T) == typeof(sbyte) ? TensorElementType.Int8
        : typeof(T) == typeof(bool) ? TensorElementType.Bool
        : typeof(T) == typeof(Half) ? TensorElementType.Float16
        : typeof(T) == typeof(double) ? TensorElementType.Double
        : typeof(T) == typeof(short) ? TensorElementType.Int16
        : typeof(T) == typeof(ushort) ? TensorElementType.UInt16
        : typeof(T) == typeof(uint) ? TensorElementType.UInt32
        : typeof(T) == typeof(ulong) ? TensorElementType.UInt64
        : throw new NotSupportedException($"{typeof(T).Name} has no ONNX tensor element type in this binding.");

    /// <summary>Size in bytes of one element, or 0 for types without a fixed size (string).</summary>
    public static int SizeOf(TensorElementType type) => type switch
    {
        TensorElementType.Float or TensorElementType.Int32 or TensorElementType.UInt32 => 4,
        TensorElementType.UInt8 or TensorElementType.Int8 or TensorElementType.Bool => 1,
        TensorElementType.UInt16 or TensorElementType.Int16 or TensorElementType.Float16 or TensorElementType.BFloat16 => 2,
        TensorElementType.Int64 or TensorElementType.UInt64 or TensorElementType.Double or TensorElementType.Complex64 => 8,
        TensorElementType.Complex128 => 16,
        _ => 0,
    };

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
