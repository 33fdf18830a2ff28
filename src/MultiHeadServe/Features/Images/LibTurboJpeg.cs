using System.Runtime.InteropServices;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// The part of the TurboJPEG 2.x API (turbojpeg.h, libjpeg-turbo) that the service uses.
/// TurboJPEG catches libjpeg's longjmp errors inside each call and reports them through the
/// return value and <c>tjGetErrorStr2</c>, so no longjmp ever crosses a managed frame.
/// </summary>
/// <remarks>
/// Thread-safe: the entry points are immutable after load. A TurboJPEG instance
/// (<see cref="TurboJpegHandle"/>) is not: use one per thread at a time.
/// </remarks>
internal sealed unsafe class LibTurboJpeg
{
    public const string Soname = "libturbojpeg.so.0";
    public const string DebianPackage = "libturbojpeg0";

    /// <summary><c>TJPF_RGB</c>.</summary>
    public const int PixelFormatRgb = 0;

    /// <summary><c>TJCS_CMYK</c>.</summary>
    public const int ColorspaceCmyk = 3;

    /// <summary><c>TJCS_YCCK</c>.</summary>
    public const int ColorspaceYcck = 4;

    /// <summary><c>TJFLAG_STOPONWARNING</c>: a warning (truncated or damaged data) ends the call with an error.</summary>
    public const int FlagStopOnWarning = 8192;

    /// <summary><c>TJFLAG_LIMITSCANS</c>: refuse progressive JPEGs with an unreasonable number of scans (a CPU bomb).</summary>
    public const int FlagLimitScans = 32768;

    private static readonly Lazy<LibTurboJpeg> Loaded = new(() => new LibTurboJpeg(NativeCodecLibrary.Load(Soname, DebianPackage)));

    private LibTurboJpeg(NativeCodecLibrary library)
    {
        Library = library;
        InitDecompress = (delegate* unmanaged<IntPtr>)library.Export("tjInitDecompress");
        DecompressHeader3 = (delegate* unmanaged<IntPtr, byte*, CULong, int*, int*, int*, int*, int>)library.Export("tjDecompressHeader3");
        Decompress2 = (delegate* unmanaged<IntPtr, byte*, CULong, byte*, int, int, int, int, int, int>)library.Export("tjDecompress2");
        Destroy = (delegate* unmanaged<IntPtr, int>)library.Export("tjDestroy");
        GetErrorStr2 = (delegate* unmanaged<IntPtr, byte*>)library.Export("tjGetErrorStr2");
    }

    /// <summary>The loaded library, loaded on first use.</summary>
    /// <exception cref="DllNotFoundException">libturbojpeg0 is not installed.</exception>
    public static LibTurboJpeg Instance => Loaded.Value;

    public NativeCodecLibrary Library { get; }

    /// <summary><c>tjhandle tjInitDecompress(void)</c>: NULL on failure.</summary>
    public delegate* unmanaged<IntPtr> InitDecompress { get; }

    /// <summary><c>int tjDecompressHeader3(tjhandle, const unsigned char *jpegBuf, unsigned long jpegSize, int *width, int *height, int *jpegSubsamp, int *jpegColorspace)</c>.</summary>
    public delegate* unmanaged<IntPtr, byte*, CULong, int*, int*, int*, int*, int> DecompressHeader3 { get; }

    /// <summary><c>int tjDecompress2(tjhandle, const unsigned char *jpegBuf, unsigned long jpegSize, unsigned char *dstBuf, int width, int pitch, int height, int pixelFormat, int flags)</c>.</summary>
    public delegate* unmanaged<IntPtr, byte*, CULong, byte*, int, int, int, int, int, int> Decompress2 { get; }

    /// <summary><c>int tjDestroy(tjhandle)</c>.</summary>
    public delegate* unmanaged<IntPtr, int> Destroy { get; }

    /// <summary><c>char *tjGetErrorStr2(tjhandle)</c>: the last error of that instance (or of the thread, for NULL).</summary>
    public delegate* unmanaged<IntPtr, byte*> GetErrorStr2 { get; }

    /// <summary>The last error message of <paramref name="handle"/> (IntPtr.Zero: of a global function on this thread).</summary>
    public string ErrorMessage(IntPtr handle)
    {
        var message = Marshal.PtrToStringUTF8((IntPtr)GetErrorStr2(handle));
        return string.IsNullOrWhiteSpace(message) ? "unknown TurboJPEG error" : message.Trim();
    }
}

/// <summary>
/// Owns one TurboJPEG instance (<c>tjhandle</c>) and destroys it with <c>tjDestroy</c>.
/// Not thread-safe: TurboJPEG keeps per-instance state (including the last error) in it.
/// </summary>
internal sealed class TurboJpegHandle : SafeHandle
{
    private TurboJpegHandle(IntPtr handle)
        : base(IntPtr.Zero, ownsHandle: true) => SetHandle(handle);

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>A new decompressor.</summary>
    /// <exception cref="InvalidOperationException">TurboJPEG could not create one (out of memory).</exception>
    public static unsafe TurboJpegHandle CreateDecompressor()
    {
        var library = LibTurboJpeg.Instance;
        var handle = library.InitDecompress();
        if (handle == IntPtr.Zero)
        {
            throw new InvalidOperationException($"TurboJPEG could not create a decompressor: {library.ErrorMessage(IntPtr.Zero)}");
        }

        return new TurboJpegHandle(handle);
    }

    protected override unsafe bool ReleaseHandle() => LibTurboJpeg.Instance.Destroy(handle) == 0;
}
