namespace MultiHeadServe.Onnx;

/// <summary>The element type of a tensor. Values equal the ONNX <c>TensorProto.DataType</c> codes.</summary>
public enum TensorElementType
{
    /// <summary>Not set, or not a tensor.</summary>
    Undefined = 0,
    /// <summary>IEEE 754 single precision.</summary>
    Float32 = 1,
    /// <summary>Unsigned 8-bit integer.</summary>
    UInt8 = 2,
    /// <summary>Signed 8-bit integer.</summary>
    Int8 = 3,
    /// <summary>Unsigned 16-bit integer.</summary>
    UInt16 = 4,
    /// <summary>Signed 16-bit integer.</summary>
    Int16 = 5,
    /// <summary>Signed 32-bit integer.</summary>
    Int32 = 6,
    /// <summary>Signed 64-bit integer.</summary>
    Int64 = 7,
    /// <summary>UTF-8 string.</summary>
    String = 8,
    /// <summary>Boolean, one byte per element.</summary>
    Bool = 9,
    /// <summary>IEEE 754 half precision.</summary>
    Float16 = 10,
    /// <summary>IEEE 754 double precision.</summary>
    Float64 = 11,
    /// <summary>Unsigned 32-bit integer.</summary>
    UInt32 = 12,
    /// <summary>Unsigned 64-bit integer.</summary>
    UInt64 = 13,
    /// <summary>Complex number of two float32 values.</summary>
    Complex64 = 14,
    /// <summary>Complex number of two float64 values.</summary>
    Complex128 = 15,
    /// <summary>Brain floating point: float32 truncated to 16 bits.</summary>
    BFloat16 = 16,
    /// <summary>8-bit float, 4 exponent and 3 mantissa bits, finite values only.</summary>
    Float8E4M3FN = 17,
    /// <summary>8-bit float, 4 exponent and 3 mantissa bits, finite values only, no negative zero.</summary>
    Float8E4M3FNUZ = 18,
    /// <summary>8-bit float, 5 exponent and 2 mantissa bits.</summary>
    Float8E5M2 = 19,
    /// <summary>8-bit float, 5 exponent and 2 mantissa bits, finite values only, no negative zero.</summary>
    Float8E5M2FNUZ = 20,
    /// <summary>Unsigned 4-bit integer, two per byte.</summary>
    UInt4 = 21,
    /// <summary>Signed 4-bit integer, two per byte.</summary>
    Int4 = 22,
    /// <summary>4-bit float, two per byte.</summary>
    Float4E2M1 = 23,
    /// <summary>8-bit exponent-only float (a power-of-two scale).</summary>
    Float8E8M0 = 24,
}

/// <summary>
/// The short names of element types (<c>float32</c>, <c>int64</c>, ...), the same spelling model manifests
/// use for <c>dataType</c>.
/// </summary>
public static class TensorElementTypeNames
{
    private static readonly Dictionary<TensorElementType, string> Names = new()
    {
        [TensorElementType.Undefined] = "undefined",
        [TensorElementType.Float32] = "float32",
        [TensorElementType.UInt8] = "uint8",
        [TensorElementType.Int8] = "int8",
        [TensorElementType.UInt16] = "uint16",
        [TensorElementType.Int16] = "int16",
        [TensorElementType.Int32] = "int32",
        [TensorElementType.Int64] = "int64",
        [TensorElementType.String] = "string",
        [TensorElementType.Bool] = "bool",
        [TensorElementType.Float16] = "float16",
        [TensorElementType.Float64] = "float64",
        [TensorElementType.UInt32] = "uint32",
        [TensorElementType.UInt64] = "uint64",
        [TensorElementType.Complex64] = "complex64",
        [TensorElementType.Complex128] = "complex128",
        [TensorElementType.BFloat16] = "bfloat16",
        [TensorElementType.Float8E4M3FN] = "float8e4m3fn",
        [TensorElementType.Float8E4M3FNUZ] = "float8e4m3fnuz",
        [TensorElementType.Float8E5M2] = "float8e5m2",
        [TensorElementType.Float8E5M2FNUZ] = "float8e5m2fnuz",
        [TensorElementType.UInt4] = "uint4",
        [TensorElementType.Int4] = "int4",
        [TensorElementType.Float4E2M1] = "float4e2m1",
        [TensorElementType.Float8E8M0] = "float8e8m0",
    };

    private static readonly Dictionary<string, TensorElementType> ByName =
        Names.ToDictionary(pair => pair.Value, pair => pair.Key, StringComparer.Ordinal);

    /// <summary>
    /// The short name of <paramref name="type"/>; a code this version does not know reads
    /// <c>type&lt;code&gt;</c> so that it still prints.
    /// </summary>
    public static string ToName(this TensorElementType type) =>
        Names.TryGetValue(type, out var name) ? name : FormattableString.Invariant($"type{(int)type}");

    /// <summary>Parses a short name such as <c>float32</c> (case-sensitive, as written by <see cref="ToName"/>).</summary>
    public static bool TryParse(string name, out TensorElementType type) => ByName.TryGetValue(name, out type);

    /// <summary>Bits per element, or 0 for strings and unknown codes, whose size is not fixed.</summary>
    internal static int BitWidth(this TensorElementType type) => type switch
    {
        TensorElementType.UInt4 or TensorElementType.Int4 or TensorElementType.Float4E2M1 => 4,
        TensorElementType.UInt8 or TensorElementType.Int8 or TensorElementType.Bool
            or TensorElementType.Float8E4M3FN or TensorElementType.Float8E4M3FNUZ
            or TensorElementType.Float8E5M2 or TensorElementType.Float8E5M2FNUZ
            or TensorElementType.Float8E8M0 => 8,
        TensorElementType.UInt16 or TensorElementType.Int16 or TensorElementType.Float16
            or TensorElementType.BFloat16 => 16,
        TensorElementType.Float32 or TensorElementType.Int32 or TensorElementType.UInt32 => 32,
        TensorElementType.Float64 or TensorElementType.Int64 or TensorElementType.UInt64
            or TensorElementType.Complex64 => 64,
        TensorElementType.Complex128 => 128,
        _ => 0,
    };
}
