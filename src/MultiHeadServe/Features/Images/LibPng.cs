using System.Runtime.InteropServices;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// The part of libpng 1.6's "simplified API" (png.h, <c>png_image_*</c>) that the service uses.
/// The simplified API runs libpng's setjmp/longjmp error handling entirely inside native code
/// and reports failures through return codes and <see cref="PngImage.Message"/>, which is why
/// it is safe to call from .NET: no longjmp ever crosses a managed frame.
/// </summary>
/// <remarks>Thread-safe: the entry points are immutable after load; each call works on its own <see cref="PngImage"/>.</remarks>
internal sealed unsafe class LibPng
{
    public const string Soname = "libpng16.so.16";
    // Debian 13 and Ubuntu 24.04 renamed the package for the 64-bit time_t transition; the soname is unchanged.
    public const string DebianPackage = "libpng16-16 (Debian 12) or libpng16-16t64 (Debian 13, Ubuntu 24.04)";

    /// <summary><c>PNG_IMAGE_VERSION</c>.</summary>
    public const uint ImageVersion = 1;

    /// <summary><c>PNG_FORMAT_FLAG_ALPHA</c>.</summary>
    public const uint FormatFlagAlpha = 0x01;

    /// <summary><c>PNG_FORMAT_FLAG_COLOR</c>.</summary>
    public const uint FormatFlagColor = 0x02;

    /// <summary><c>PNG_FORMAT_FLAG_LINEAR</c>: 16-bit channels.</summary>
    public const uint FormatFlagLinear = 0x04;

    /// <summary><c>PNG_FORMAT_FLAG_COLORMAP</c>.</summary>
    public const uint FormatFlagColormap = 0x08;

    /// <summary><c>PNG_FORMAT_GRAY</c>.</summary>
    public const uint FormatGray = 0;

    /// <summary><c>PNG_FORMAT_RGB</c>.</summary>
    public const uint FormatRgb = FormatFlagColor;

    /// <summary><c>PNG_FORMAT_RGBA</c>.</summary>
    public const uint FormatRgba = FormatFlagColor | FormatFlagAlpha;

    /// <summary><c>PNG_IMAGE_FLAG_16BIT_sRGB</c>: read 16-bit data without gAMA/sRGB chunks as sRGB, not linear.</summary>
    public const uint ImageFlag16BitSrgb = 0x04;

    /// <summary><c>PNG_IMAGE_WARNING</c>, <c>PNG_IMAGE_ERROR</c>: the low two bits of <see cref="PngImage.WarningOrError"/>.</summary>
    public const uint ImageWarningOrErrorMask = 0x03;

    private static readonly Lazy<LibPng> Loaded = new(() => new LibPng(NativeCodecLibrary.Load(Soname, DebianPackage)));

    private LibPng(NativeCodecLibrary library)
    {
        Library = library;
        ImageBeginReadFromMemory = (delegate* unmanaged<PngImage*, void*, nuint, int>)library.Export("png_image_begin_read_from_memory");
        ImageFinishRead = (delegate* unmanaged<PngImage*, void*, void*, int, void*, int>)library.Export("png_image_finish_read");
        ImageFree = (delegate* unmanaged<PngImage*, void>)library.Export("png_image_free");
    }

    /// <summary>The loaded library, loaded on first use.</summary>
    /// <exception cref="DllNotFoundException">libpng16-16 is not installed.</exception>
    public static LibPng Instance => Loaded.Value;

    public NativeCodecLibrary Library { get; }

    /// <summary><c>int png_image_begin_read_from_memory(png_imagep image, png_const_voidp memory, size_t size)</c>.</summary>
    public delegate* unmanaged<PngImage*, void*, nuint, int> ImageBeginReadFromMemory { get; }

    /// <summary><c>int png_image_finish_read(png_imagep image, png_const_colorp background, void *buffer, png_int_32 row_stride, void *colormap)</c>.</summary>
    public delegate* unmanaged<PngImage*, void*, void*, int, void*, int> ImageFinishRead { get; }

    /// <summary><c>void png_image_free(png_imagep image)</c>.</summary>
    public delegate* unmanaged<PngImage*, void> ImageFree { get; }
}

/// <summary>
/// <c>png_image</c> from png.h (104 bytes on LP64). libpng keeps a pointer to this struct for the
/// whole read, so it must not move between <c>begin_read</c> and <c>finish_read</c>: keep it in
/// a local (stack) variable.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct PngImage
{
    /// <summary><c>png_controlp opaque</c>: NULL before begin_read; released by <c>png_image_free</c>.</summary>
    public IntPtr Opaque;
    public uint Version;
    public uint Width;
    public uint Height;
    public uint Format;
    public uint Flags;
    public uint ColormapEntries;
    public uint WarningOrError;
    public fixed byte Message[64];

    /// <summary><c>PNG_IMAGE_FAILED</c>.</summary>
    public readonly bool Failed => (WarningOrError & LibPng.ImageWarningOrErrorMask) > 1;

    /// <summary>The NUL-terminated message libpng left, or an empty string.</summary>
    public readonly string MessageText()
    {
        fixed (byte* message = Message)
        {
            var text = new ReadOnlySpan<byte>(message, 64);
            var end = text.IndexOf((byte)0);
            return System.Text.Encoding.ASCII.GetString(end < 0 ? text : text[..end]).Trim();
        }
    }
}
