using System.Buffers.Binary;
using System.IO.Compression;
using MultiHeadServe.Features.Images;

namespace MultiHeadServe.Tests.Features.Images;

/// <summary>
/// Real PNG files for tests. Ordinary ones come from libpng's own simplified write API; the few
/// that API cannot produce (16-bit without a gAMA chunk, as most tools write them; headers
/// declaring absurd sizes) are assembled chunk by chunk with zlib.
/// </summary>
internal static unsafe class PngFixture
{
    /// <summary>IHDR colour types (PNG spec §11.2.2).</summary>
    public const byte ColorTypeGray = 0;
    public const byte ColorTypeRgb = 2;
    public const byte ColorTypePalette = 3;
    public const byte ColorTypeGrayAlpha = 4;
    public const byte ColorTypeRgba = 6;

    /// <summary><c>PNG_FORMAT_GA</c>.</summary>
    public const uint FormatGrayAlpha = LibPng.FormatFlagAlpha;

    /// <summary><c>PNG_FORMAT_RGB_COLORMAP</c>.</summary>
    public const uint FormatRgbColormap = LibPng.FormatRgb | LibPng.FormatFlagColormap;

    /// <summary><c>PNG_FORMAT_RGBA_COLORMAP</c>.</summary>
    public const uint FormatRgbaColormap = LibPng.FormatRgba | LibPng.FormatFlagColormap;

    private static readonly Lazy<IntPtr> WriteToMemory =
        new(() => LibPng.Instance.Library.Export("png_image_write_to_memory"));

    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>
    /// Encodes 8-bit pixels with <c>png_image_write_to_memory</c>. For a colour-mapped format,
    /// <paramref name="pixels"/> holds one palette index per pixel and <paramref name="colormap"/>
    /// the entries (3 or 4 bytes each).
    /// </summary>
    public static byte[] Write(int width, int height, uint format, ReadOnlySpan<byte> pixels, ReadOnlySpan<byte> colormap = default)
    {
        // int png_image_write_to_memory(png_imagep, void *memory, png_alloc_size_t *memory_bytes,
        //     int convert_to_8_bit, const void *buffer, png_int_32 row_stride, const void *colormap)
        var write = (delegate* unmanaged<PngImage*, void*, nuint*, int, void*, int, void*, int>)WriteToMemory.Value;
        var entrySize = (format & LibPng.FormatFlagAlpha) != 0 ? 4 : 3;
        var colormapEntries = (uint)(colormap.Length / entrySize);

        PngImage Describe() => new()
        {
            Version = LibPng.ImageVersion,
            Width = (uint)width,
            Height = (uint)height,
            Format = format,
            ColormapEntries = colormapEntries,
        };

        fixed (byte* source = pixels)
        fixed (byte* map = colormap)
        {
            // First call with no buffer: libpng reports the size it needs.
            var image = Describe();
            nuint size = 0;
            if (write(&image, null, &size, 0, source, 0, map) == 0)
            {
                throw new InvalidOperationException($"libpng could not write the fixture: {image.MessageText()}");
            }

            var png = new byte[size];
            image = Describe();
            fixed (byte* output = png)
            {
                if (write(&image, output, &size, 0, source, 0, map) == 0)
                {
                    throw new InvalidOperationException($"libpng could not write the fixture: {image.MessageText()}");
                }
            }

            return png[..(int)size];
        }
    }

    /// <summary>A non-interlaced PNG from raw scanlines (each already prefixed with its filter byte).</summary>
    public static byte[] FromChunks(uint width, uint height, byte bitDepth, byte colorType, ReadOnlySpan<byte> scanlines)
    {
        var header = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(header, width);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), height);
        header[8] = bitDepth;
        header[9] = colorType;

        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            zlib.Write(scanlines);
        }

        using var file = new MemoryStream();
        file.Write(LibPngSignature);
        WriteChunk(file, "IHDR"u8, header);
        WriteChunk(file, "IDAT"u8, compressed.ToArray());
        WriteChunk(file, "IEND"u8, []);
        return file.ToArray();
    }

    /// <summary>The colour type byte of the IHDR chunk, to prove what kind of PNG a fixture is.</summary>
    public static byte ColorType(byte[] png) => png[25];

    /// <summary>The bit depth byte of the IHDR chunk.</summary>
    public static byte BitDepth(byte[] png) => png[24];

    /// <summary>The offset of the first byte of the first IDAT chunk's data.</summary>
    public static int IdatDataOffset(byte[] png)
    {
        var offset = 8;
        while (offset + 8 <= png.Length)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(offset));
            if (png.AsSpan(offset + 4, 4).SequenceEqual("IDAT"u8))
            {
                return offset + 8;
            }

            offset += 12 + length;
        }

        throw new InvalidOperationException("no IDAT chunk");
    }

    private static ReadOnlySpan<byte> LibPngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static void WriteChunk(Stream file, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(word, (uint)data.Length);
        file.Write(word);
        file.Write(type);
        file.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc(type, data));
        file.Write(word);
    }

    // CRC-32 (ISO 3309, reflected polynomial 0xEDB88320) over the chunk type and data, as PNG requires.
    private static uint Crc(ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in type)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        foreach (var b in data)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc ^ 0xFFFFFFFFu;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }
}
