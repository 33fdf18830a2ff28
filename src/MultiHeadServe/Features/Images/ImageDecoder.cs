using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// Turns the encoded image of a request (PNG, JPEG or WebP) into RGB pixels, once, with SkiaSharp's
/// codecs (<see cref="SkiaImageCodec"/>). The format is chosen by the file's magic bytes, not by what
/// the client claims, and only these three are accepted even though Skia reads more.
/// </summary>
/// <remarks>
/// Thread-safe and stateless: every call uses its own codec. Hostile input (truncated, corrupt, or
/// declaring huge dimensions) ends in an <see cref="ImageDecodeException"/>, never in a crash or a
/// large allocation. Skia's native library is loaded on first use; call <see cref="EnsureCodecLoaded"/>
/// at start-up to fail early when it is missing.
/// </remarks>
public static class ImageDecoder
{
    /// <summary>Decodes a PNG, JPEG or WebP file.</summary>
    /// <param name="encoded">The file's bytes; only read during the call.</param>
    /// <param name="limits">The largest image accepted; checked before pixel memory is allocated.</param>
    /// <returns>The image as 8-bit RGB (alpha dropped, grayscale and palettes expanded; see <see cref="DecodedImage"/>).</returns>
    /// <exception cref="ImageDecodeException">The image is empty, not PNG, JPEG or WebP, corrupt, or too large: the client's fault.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limits"/> is unusable (configuration error).</exception>
    /// <exception cref="InvalidOperationException">Skia's native library cannot be loaded (deployment error).</exception>
    public static DecodedImage Decode(ReadOnlySpan<byte> encoded, ImageDecodeLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        limits.Validate();

        if (encoded.IsEmpty)
        {
            throw new ImageDecodeException("image is empty");
        }

        var format = EncodedImageFormat.Detect(encoded)
            ?? throw new ImageDecodeException(UnsupportedFormatReason(encoded));
        return SkiaImageCodec.Decode(encoded, format, limits);
    }

    /// <summary>
    /// Decodes the base64 text a JSON request carries, optionally as a data URL
    /// (<c>data:image/png;base64,…</c>, which browsers produce), then the image it holds.
    /// </summary>
    /// <param name="base64">Standard base64 (RFC 4648 §4); whitespace is ignored.</param>
    /// <param name="limits">The largest image accepted.</param>
    /// <exception cref="ImageDecodeException">The text is not base64, or the image it holds cannot be decoded.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limits"/> is unusable (configuration error).</exception>
    /// <exception cref="InvalidOperationException">Skia's native library cannot be loaded (deployment error).</exception>
    public static DecodedImage DecodeBase64(ReadOnlySpan<char> base64, ImageDecodeLimits limits)
    {
        // Base64 is ASCII: anything else is not base64, and the UTF-8 path says so.
        var utf8 = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(base64.Length));
        try
        {
            var length = Encoding.UTF8.GetBytes(base64, utf8);
            return DecodeBase64(utf8.AsSpan(0, length), limits);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(utf8);
        }
    }

    /// <summary>
    /// Decodes base64 given as UTF-8 bytes, as an unescaped JSON string holds it, without copying
    /// it into a string first. Otherwise as <see cref="DecodeBase64(ReadOnlySpan{char}, ImageDecodeLimits)"/>.
    /// </summary>
    /// <param name="base64">Standard base64 (RFC 4648 §4) as UTF-8, optionally a data URL; whitespace is ignored.</param>
    /// <param name="limits">The largest image accepted.</param>
    /// <exception cref="ImageDecodeException">The text is not base64, or the image it holds cannot be decoded.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limits"/> is unusable (configuration error).</exception>
    /// <exception cref="InvalidOperationException">Skia's native library cannot be loaded (deployment error).</exception>
    public static DecodedImage DecodeBase64(ReadOnlySpan<byte> base64, ImageDecodeLimits limits)
    {
        var text = StripDataUrl(base64).Trim(" \t\r\n"u8);
        if (text.IsEmpty)
        {
            throw new ImageDecodeException("image is empty");
        }

        // The encoded file is only needed during the call: borrow the buffer.
        var buffer = ArrayPool<byte>.Shared.Rent(Base64.GetMaxDecodedFromUtf8Length(text.Length));
        try
        {
            if (Base64.DecodeFromUtf8(text, buffer, out _, out var length) != OperationStatus.Done)
            {
                throw new ImageDecodeException("image is not valid base64");
            }

            return Decode(buffer.AsSpan(0, length), limits);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Loads Skia's native library and decodes a one-pixel image with it, so a host serving image
    /// models can refuse to start without it instead of failing its first request.
    /// </summary>
    /// <exception cref="InvalidOperationException">The library is missing or not the version SkiaSharp expects; the message says what to deploy.</exception>
    public static void EnsureCodecLoaded() => SkiaImageCodec.EnsureLoaded();

    internal static ImageDecodeException TooLarge(long width, long height, ImageDecodeLimits limits) =>
        new($"image {width}x{height} exceeds the limit {limits.MaxWidth}x{limits.MaxHeight}");

    private static ReadOnlySpan<byte> StripDataUrl(ReadOnlySpan<byte> text)
    {
        if (text.Length < 5 || !Ascii.EqualsIgnoreCase(text[..5], "data:"u8))
        {
            return text;
        }

        var comma = text.IndexOf((byte)',');
        if (comma < 0 || !Ascii.EqualsIgnoreCase(text[Math.Max(0, comma - 7)..comma], ";base64"u8))
        {
            throw new ImageDecodeException("image data URL is not base64 (expected data:<type>;base64,<data>)");
        }

        return text[(comma + 1)..];
    }

    private static string UnsupportedFormatReason(ReadOnlySpan<byte> encoded)
    {
        // Name the common mistakes so the client knows what to change. Skia could read GIF and BMP,
        // but models are trained on photographs and renders, and a smaller attack surface is worth more.
        var recognised =
            encoded.StartsWith("GIF8"u8) ? "GIF" :
            encoded.StartsWith("II*\0"u8) || encoded.StartsWith("MM\0*"u8) ? "TIFF" :
            encoded.StartsWith("BM"u8) ? "BMP" :
            null;
        if (recognised is not null)
        {
            return $"unsupported image format {recognised}; send PNG, JPEG or WebP";
        }

        // Base64 of the PNG signature / of a JPEG SOI / of "RIFF": the bytes were base64-encoded twice.
        if (encoded.StartsWith("iVBORw0KGgo"u8) || encoded.StartsWith("/9j/"u8) || encoded.StartsWith("UklGR"u8))
        {
            return "unsupported image format: the data is base64 text; base64-encode the image file once in JSON, or upload the file itself";
        }

        return "unsupported image format; send PNG, JPEG or WebP";
    }
}
