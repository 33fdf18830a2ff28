using System.Buffers.Binary;
using System.IO.Compression;

namespace MultiHeadServe.Onnx.Tests;

/// <summary>
/// Reads the PNGs the training kit writes (8-bit RGB, one IDAT, every scanline with filter 0), so a test can
/// rebuild a reference image's exact pixels without an imaging library.
/// </summary>
internal static class KitPng
{
    /// <summary>The image as RGB bytes, row after row, with its size.</summary>
    public static (byte[] Rgb, int Width, int Height) Decode(byte[] png)
    {
        var position = 8;
        int width = 0, height = 0;
        using var compressed = new MemoryStream();
        while (position < png.Length)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(position));
            var kind = System.Text.Encoding.ASCII.GetString(png, position + 4, 4);
            var data = png.AsSpan(position + 8, length);
            if (kind == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                Assert.True(data[8] == 8 && data[9] == 2, "Only 8-bit RGB PNGs are expected.");
            }
            else if (kind == "IDAT")
            {
                compressed.Write(data);
            }

            position += length + 12;
        }

        compressed.Position = 0;
        using var inflate = new ZLibStream(compressed, CompressionMode.Decompress);
        using var raw = new MemoryStream();
        inflate.CopyTo(raw);
        var bytes = raw.ToArray();
        var stride = width * 3;
        var rgb = new byte[stride * height];
        for (var row = 0; row < height; row++)
        {
            Assert.Equal(0, bytes[row * (stride + 1)]);
            Array.Copy(bytes, row * (stride + 1) + 1, rgb, row * stride, stride);
        }

        return (rgb, width, height);
    }
}
