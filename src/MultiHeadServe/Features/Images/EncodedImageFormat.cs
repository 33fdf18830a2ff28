using SkiaSharp;

namespace MultiHeadServe.Features.Images;

/// <summary>A file format the service accepts, recognised by its magic bytes.</summary>
/// <param name="Name">How messages name it: <c>PNG</c>, <c>JPEG</c>, <c>WebP</c>.</param>
/// <param name="MediaType">Its media type, as an upload's Content-Type gives it.</param>
/// <param name="Skia">The format Skia must recognise in the same bytes.</param>
internal sealed record EncodedImageFormat(string Name, string MediaType, SKEncodedImageFormat Skia)
{
    public static readonly EncodedImageFormat Png = new("PNG", "image/png", SKEncodedImageFormat.Png);

    public static readonly EncodedImageFormat Jpeg = new("JPEG", "image/jpeg", SKEncodedImageFormat.Jpeg);

    public static readonly EncodedImageFormat Webp = new("WebP", "image/webp", SKEncodedImageFormat.Webp);

    /// <summary>Every accepted format, in the order messages list them.</summary>
    public static IReadOnlyList<EncodedImageFormat> All { get; } = [Png, Jpeg, Webp];

    private static ReadOnlySpan<byte> PngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static ReadOnlySpan<byte> JpegSignature => [0xFF, 0xD8, 0xFF];

    /// <summary>The format whose signature <paramref name="encoded"/> starts with, or null.</summary>
    public static EncodedImageFormat? Detect(ReadOnlySpan<byte> encoded)
    {
        if (encoded.StartsWith(PngSignature))
        {
            return Png;
        }

        // SOI followed by the first byte of the next marker.
        if (encoded.StartsWith(JpegSignature))
        {
            return Jpeg;
        }

        // A RIFF container ("RIFF", 4 bytes of length) of form type "WEBP".
        if (encoded.Length >= 12 && encoded.StartsWith("RIFF"u8) && encoded[8..12].SequenceEqual("WEBP"u8))
        {
            return Webp;
        }

        return null;
    }

    /// <summary>The accepted format with this media type (<c>image/png</c>, …; case-insensitive), or null.</summary>
    public static EncodedImageFormat? FromMediaType(string mediaType) =>
        All.FirstOrDefault(format => format.MediaType.Equals(mediaType, StringComparison.OrdinalIgnoreCase));
}
