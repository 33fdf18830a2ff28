namespace MultiHeadServe.Tests.Features.Images;

/// <summary>Source pixels for fixtures.</summary>
internal static class TestImages
{
    /// <summary>Seeded noise: every byte value shows up, so a wrong channel or row order cannot pass.</summary>
    public static byte[] Noise(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>A smooth RGB image (horizontal red ramp, vertical green ramp, diagonal blue), which JPEG keeps closely.</summary>
    public static byte[] Gradient(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var offset = (y * width + x) * 3;
                rgb[offset] = (byte)(x * 255 / (width - 1));
                rgb[offset + 1] = (byte)(y * 255 / (height - 1));
                rgb[offset + 2] = (byte)((x + y) * 255 / (width + height - 2));
            }
        }

        return rgb;
    }
}
