using System.Buffers;
using System.Runtime.InteropServices;
using MultiHeadServe.OnnxRuntime.Native;

namespace MultiHeadServe.OnnxRuntime;

/// <summary>
/// A tensor (<c>OrtValue</c>). Inputs wrap caller memory without copying: the memory stays pinned
/// until the value is disposed, and the caller must not reuse it for something else before then.
/// Outputs are owned by ONNX Runtime; <see cref="GetData{T}"/> is a span over native memory valid
/// while this value lives. Reading is thread-safe; disposing is idempotent.
/// </summary>
public sealed unsafe class OrtValue : IDisposable
{
    private static readonly Lazy<OrtHandle> CpuMemoryInfo = new(CreateCpuMemoryInfo);

    private readonly OrtHandle _handle;
    private MemoryHandle _pin;
    private long[]? _shape;
    private TensorElementType _elementType;

    private OrtValue(OrtHandle handle, MemoryHandle pin, long[]? shape, TensorElementType elementType)
    {
        _handle = handle;
        _pin = pin;
        _shape = shape;
        _elementType = elementType;
    }

    internal nint DangerousHandle => _handle.DangerousGetHandle();

    internal OrtHandle Handle => _handle;

    /// <summary>Wraps <paramref name="data"/> as a tensor of <paramref name="shape"/> without copying.</summary>
    /// <exception cref="ArgumentException">The element count of <paramref name="shape"/> differs from <paramref name="data"/>'s length.</exception>
    public static OrtValue CreateTensor<T>(Memory<T> data, ReadOnlySpan<long> shape)
        where T : unmanaged
    {
        var elements = ElementCount(shape);
        if (elements != data.Length)
        {
            throw new ArgumentException(
                $"Shape [{string.Join(", ", shape.ToArray())}] holds {elements} elements but the buffer has {data.Length}.", nameof(shape));
        }

        var elementType = TensorElementTypes.Of<T>();
        var pin = data.Pin();
        try
        {
            nint value;
            fixed (long* dims = shape)
            {
                OrtNative.Check(((delegate* unmanaged<nint, void*, nuint, long*, nuint, int, nint*, nint>)
                    OrtNative.Fn(OrtNative.Entry.CreateTensorWithDataAsOrtValue))(
                        CpuMemoryInfo.Value.DangerousGetHandle(), pin.Pointer, (nuint)(data.Length * sizeof(T)),
                        dims, (nuint)shape.Length, (int)elementType, &value));
            }

            return new OrtValue(new OrtHandle(value, OrtNative.Entry.ReleaseValue), pin, shape.ToArray(), elementType);
        }
        catch
        {
            pin.Dispose();
            throw;
        }
    }

    /// <summary>Wraps an array as a tensor without copying.</summary>
    public static OrtValue CreateTensor<T>(T[] data, params long[] shape)
        where T : unmanaged => CreateTensor(data.AsMemory(), shape);

    internal static OrtValue FromOutput(nint value) =>
        new(new OrtHandle(value, OrtNative.Entry.ReleaseValue), default, null, TensorElementType.Undefined);

    /// <summary>The tensor's element type.</summary>
    public TensorElementType ElementType
    {
        get
        {
            if (_elementType == TensorElementType.Undefined)
            {
                ReadTypeAndShape();
            }

            return _elementType;
        }
    }

    /// <summary>The tensor's dimensions.</summary>
    public IReadOnlyList<long> Shape
    {
        get
        {
            if (_shape is null)
            {
                ReadTypeAndShape();
            }

            return _shape!;
        }
    }

    /// <summary>Number of elements (product of <see cref="Shape"/>).</summary>
    public long ElementCount() => ElementCount(Shape is long[] array ? array : Shape.ToArray());

    /// <summary>
    /// The tensor's data as a span over the value's memory, valid while this value lives.
    /// </summary>
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> does not match the element type.</exception>
    public Span<T> GetData<T>()
        where T : unmanaged
    {
        var expected = TensorElementTypes.Of<T>();
        if (expected != ElementType)
        {
            throw new InvalidOperationException(
                $"The tensor holds {TensorElementTypes.Name(ElementType)}, not {TensorElementTypes.Name(expected)}.");
        }

        var added = false;
        _handle.DangerousAddRef(ref added);
        try
        {
            void* data;
            OrtNative.Check(((delegate* unmanaged<nint, void**, nint>)OrtNative.Fn(OrtNative.Entry.GetTensorMutableData))(
                _handle.DangerousGetHandle(), &data));
            return new Span<T>(data, checked((int)ElementCount()));
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    private void ReadTypeAndShape()
    {
        nint info;
        OrtNative.Check(((delegate* unmanaged<nint, nint*, nint>)OrtNative.Fn(OrtNative.Entry.GetTensorTypeAndShape))(
            _handle.DangerousGetHandle(), &info));
        using var infoHandle = new OrtHandle(info, OrtNative.Entry.ReleaseTensorTypeAndShapeInfo);
        var (type, shape, _) = TensorInfo.Read(info);
        _elementType = type;
        _shape = shape;
    }

    private static long ElementCount(ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (var dim in shape)
        {
            if (dim < 0)
            {
                throw new ArgumentException($"A tensor's dimensions must be known; got {dim}.", nameof(shape));
            }

            count = checked(count * dim);
        }

        return count;
    }

    internal static OrtHandle CreateCpuMemoryInfo()
    {
        nint info;
        // OrtDeviceAllocator (0), OrtMemTypeDefault (0): plain CPU memory the caller owns.
        OrtNative.Check(((delegate* unmanaged<int, int, nint*, nint>)OrtNative.Fn(OrtNative.Entry.CreateCpuMemoryInfo))(0, 0, &info));
        return new OrtHandle(info, OrtNative.Entry.ReleaseMemoryInfo);
    }

    /// <summary>Releases the native value and unpins the caller's memory. Safe to call twice.</summary>
    public void Dispose()
    {
        _handle.Dispose();
        _pin.Dispose();
        _pin = default;
    }
}

/// <summary>Reads <c>OrtTensorTypeAndShapeInfo</c>.</summary>
internal static unsafe class TensorInfo
{
    public static (TensorElementType Type, long[] Shape, string[] Symbolic) Read(nint info)
    {
        int type;
        OrtNative.Check(((delegate* unmanaged<nint, int*, nint>)OrtNative.Fn(OrtNative.Entry.GetTensorElementType))(info, &type));
        nuint count;
        OrtNative.Check(((delegate* unmanaged<nint, nuint*, nint>)OrtNative.Fn(OrtNative.Entry.GetDimensionsCount))(info, &count));
        var shape = new long[(int)count];
        var symbolic = new string[(int)count];
        if (count > 0)
        {
            fixed (long* dims = shape)
            {
                OrtNative.Check(((delegate* unmanaged<nint, long*, nuint, nint>)OrtNative.Fn(OrtNative.Entry.GetDimensions))(info, dims, count));
            }

            var names = stackalloc nint[(int)count];
            OrtNative.Check(((delegate* unmanaged<nint, nint*, nuint, nint>)OrtNative.Fn(OrtNative.Entry.GetSymbolicDimensions))(info, names, count));
            for (var i = 0; i < (int)count; i++)
            {
                symbolic[i] = Marshal.PtrToStringUTF8(names[i]) ?? "";
            }
        }

        return ((TensorElementType)type, shape, symbolic);
    }
}
