using System.Runtime.InteropServices;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// Decodes baseline and progressive JPEG (RGB/YCbCr or grayscale) through TurboJPEG into 8-bit
/// RGB, with libjpeg's defaults (accurate integer IDCT, smooth chroma upsampling), the same as
/// PIL on the same libjpeg-turbo.
/// </summary>
/// <remarks>
/// Strict on damage: any libjpeg warning (truncated file, corrupt entropy data) rejects the image
/// rather than returning a partly grey one. CMYK/YCCK JPEGs are rejected: converting them needs
/// a colour profile. EXIF orientation is ignored, as PIL's <c>Image.open</c> ignores it.
/// Thread-safe: every call owns its TurboJPEG instance.
/// </remarks>
internal static unsafe class JpegDecoder
{
    /// <summary>SOI marker followed by the first byte of the next marker.</summary>
    public static ReadOnlySpan<byte> Signature => [0xFF, 0xD8, 0xFF];

    /// <exception cref="ImageDecodeException">The data is not a readable JPEG, or it is larger than <paramref name="limits"/>.</exception>
    public static DecodedImage Decode(ReadOnlySpan<byte> encoded, ImageDecodeLimits limits)
    {
        var turboJpeg = LibTurboJpeg.Instance;
        using var decompressor = TurboJpegHandle.CreateDecompressor();
        var handle = decompressor.DangerousGetHandle();
        var size = new CULong((nuint)encoded.Length);

        fixed (byte* data = encoded)
        {
            int width, height, subsampling, colorspace;
            if (turboJpeg.DecompressHeader3(handle, data, size, &width, &height, &subsampling, &colorspace) != 0)
            {
                throw Corrupt(turboJpeg, handle);
            }

            if (width <= 0 || height <= 0)
            {
                throw new ImageDecodeException($"corrupt JPEG: it declares {width}x{height} pixels");
            }

            // Only the headers have been parsed: nothing the size of the image is allocated yet.
            if (!limits.Allows(width, height))
            {
                throw ImageDecoder.TooLarge(width, height, limits);
            }

            if (colorspace is LibTurboJpeg.ColorspaceCmyk or LibTurboJpeg.ColorspaceYcck)
            {
                throw new ImageDecodeException("unsupported JPEG: CMYK colour; send an RGB or grayscale JPEG, or a PNG");
            }

            var rgb = new byte[width * height * 3];
            fixed (byte* pixels = rgb)
            {
                const int flags = LibTurboJpeg.FlagStopOnWarning | LibTurboJpeg.FlagLimitScans;
                if (turboJpeg.Decompress2(handle, data, size, pixels, width, width * 3, height, LibTurboJpeg.PixelFormatRgb, flags) != 0)
                {
                    throw Corrupt(turboJpeg, handle);
                }
            }

            return new DecodedImage(width, height, rgb);
        }
    }

    private static ImageDecodeException Corrupt(LibTurboJpeg turboJpeg, IntPtr handle) =>
        new($"corrupt JPEG: {turboJpeg.ErrorMessage(handle)}");
}
