using System.Runtime.InteropServices;
using MultiHeadServe.Features.Images;

namespace MultiHeadServe.Tests.Features.Images;

/// <summary>Real JPEG files for tests, compressed by TurboJPEG (<c>tjCompress2</c>), the library the decoder reads with.</summary>
internal static unsafe class JpegFixture
{
    /// <summary><c>TJPF_RGB</c>, <c>TJPF_GRAY</c>, <c>TJPF_CMYK</c>.</summary>
    public const int PixelFormatRgb = 0;
    public const int PixelFormatGray = 6;
    public const int PixelFormatCmyk = 11;

    /// <summary><c>TJSAMP_444</c>, <c>TJSAMP_420</c>, <c>TJSAMP_GRAY</c>.</summary>
    public const int Subsampling444 = 0;
    public const int Subsampling420 = 2;
    public const int SubsamplingGray = 3;

    /// <summary><c>TJFLAG_PROGRESSIVE</c>.</summary>
    public const int FlagProgressive = 16384;

    /// <summary>Compresses packed pixels (3 bytes per pixel for RGB, 1 for gray, 4 for CMYK).</summary>
    public static byte[] Compress(
        int width, int height, ReadOnlySpan<byte> pixels, int pixelFormat, int subsampling, int quality, int flags = 0)
    {
        var library = LibTurboJpeg.Instance.Library;
        var initCompress = (delegate* unmanaged<IntPtr>)library.Export("tjInitCompress");
        // int tjCompress2(tjhandle, const unsigned char *srcBuf, int width, int pitch, int height, int pixelFormat,
        //     unsigned char **jpegBuf, unsigned long *jpegSize, int jpegSubsamp, int jpegQual, int flags)
        var compress = (delegate* unmanaged<IntPtr, byte*, int, int, int, int, byte**, CULong*, int, int, int, int>)library.Export("tjCompress2");
        var free = (delegate* unmanaged<byte*, void>)library.Export("tjFree");
        var destroy = (delegate* unmanaged<IntPtr, int>)library.Export("tjDestroy");

        var handle = initCompress();
        if (handle == IntPtr.Zero)
        {
            throw new InvalidOperationException("tjInitCompress failed");
        }

        byte* jpeg = null;
        try
        {
            var size = new CULong(0);
            fixed (byte* source = pixels)
            {
                if (compress(handle, source, width, 0, height, pixelFormat, &jpeg, &size, subsampling, quality, flags) != 0)
                {
                    throw new InvalidOperationException($"tjCompress2 failed: {LibTurboJpeg.Instance.ErrorMessage(handle)}");
                }
            }

            return new ReadOnlySpan<byte>(jpeg, checked((int)size.Value)).ToArray();
        }
        finally
        {
            free(jpeg);
            _ = destroy(handle);
        }
    }

    /// <summary>Offset of the SOF0/SOF2 marker (baseline or progressive frame header).</summary>
    public static int StartOfFrameOffset(byte[] jpeg)
    {
        for (var i = 2; i + 1 < jpeg.Length; i++)
        {
            if (jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC2)
            {
                return i;
            }
        }

        throw new InvalidOperationException("no SOF marker");
    }
}
