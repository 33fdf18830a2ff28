using System.Buffers;

namespace MultiHeadServe.Features.Images;

/// <summary>
/// Writes one decoded image into a model's input tensor as an <see cref="ImagePreprocessing"/>
/// says: resize, convert to the channel count, scale and normalise, lay out.
/// </summary>
/// <remarks>
/// <para>
/// Resizing is bilinear with half-pixel centres (source x = (x + 0.5) * in / out - 0.5, clamped
/// at the edges), computed in float on the 0..255 values: the same as PyTorch's
/// <c>F.interpolate(mode="bilinear", align_corners=False, antialias=False)</c>. For enlarging
/// this is also what PIL's <c>resize(BILINEAR)</c> computes (before PIL rounds to bytes);
/// for shrinking, PIL filters over a wider window (antialiasing) and differs. When the image
/// already has the model's size nothing is resampled and values are exact.
/// </para>
/// <para>Thread-safe and allocation-light: no state, only per-call scratch.</para>
/// </remarks>
public static class ImageTensorWriter
{
    /// <summary>Writes exactly <see cref="ImagePreprocessing.TensorLength"/> floats for <paramref name="image"/>.</summary>
    /// <param name="image">The decoded image.</param>
    /// <param name="spec">The model's preprocessing; validated here too.</param>
    /// <param name="destination">This image's slice of the batch tensor: exactly <see cref="ImagePreprocessing.TensorLength"/> floats.</param>
    /// <exception cref="ImageDecodeException">The image has another size and <paramref name="spec"/> forbids resizing (the client's fault).</exception>
    /// <exception cref="ArgumentException"><paramref name="spec"/> is invalid, <paramref name="image"/> is inconsistent, or <paramref name="destination"/> has the wrong length.</exception>
    public static void Write(DecodedImage image, ImagePreprocessing spec, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();

        var pixels = image.Pixels;
        if (image.Width <= 0 || image.Height <= 0 || pixels.Length != (long)image.Width * image.Height * 3)
        {
            throw new ArgumentException(
                $"a {image.Width}x{image.Height} RGB image needs {(long)image.Width * image.Height * 3} bytes, not {pixels.Length}", nameof(image));
        }

        if (destination.Length != spec.TensorLength)
        {
            throw new ArgumentException(
                $"the destination holds {destination.Length} floats; a {spec.Channels}x{spec.Height}x{spec.Width} tensor needs {spec.TensorLength}",
                nameof(destination));
        }

        var sameSize = image.Width == spec.Width && image.Height == spec.Height;
        if (!sameSize && spec.Resize == ImagePreprocessing.ResizeNone)
        {
            throw new ImageDecodeException($"image is {image.Width}x{image.Height}; this model takes {spec.Width}x{spec.Height}");
        }

        var output = new TensorLayout(spec);
        if (spec.Channels == 3)
        {
            WritePixels(pixels, 3, image.Width, image.Height, sameSize, output, destination);
            return;
        }

        // Grayscale at the source resolution first, then resize: the order of PIL's
        // img.convert("L").resize(...).
        var pixelCount = image.Width * image.Height;
        var luma = ArrayPool<byte>.Shared.Rent(pixelCount);
        try
        {
            ToLuma(pixels, luma.AsSpan(0, pixelCount));
            WritePixels(luma.AsSpan(0, pixelCount), 1, image.Width, image.Height, sameSize, output, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(luma);
        }
    }

    private static void WritePixels(
        ReadOnlySpan<byte> source, int sourceChannels, int sourceWidth, int sourceHeight, bool sameSize,
        in TensorLayout output, Span<float> destination)
    {
        if (sameSize)
        {
            WriteExact(source, sourceChannels, output, destination);
        }
        else
        {
            WriteBilinear(source, sourceChannels, sourceWidth, sourceHeight, output, destination);
        }
    }

    private static void WriteExact(ReadOnlySpan<byte> source, int sourceChannels, in TensorLayout output, Span<float> destination)
    {
        // A byte has 256 values: normalise each once per channel (the same arithmetic, so the same
        // bits) and look pixels up, instead of normalising every pixel.
        Span<float> table = stackalloc float[256 * sourceChannels];
        for (var channel = 0; channel < sourceChannels; channel++)
        {
            for (var value = 0; value < 256; value++)
            {
                table[channel * 256 + value] = output.Normalise(value, channel);
            }
        }

        var pixelCount = output.Width * output.Height;
        if (output.IsPlanar && sourceChannels == 3)
        {
            // The common case (RGB into NCHW): one pass over the pixels, three planes written side by side.
            var red = destination[..pixelCount];
            var green = destination.Slice(pixelCount, pixelCount);
            var blue = destination.Slice(2 * pixelCount, pixelCount);
            ReadOnlySpan<float> redTable = table[..256], greenTable = table.Slice(256, 256), blueTable = table.Slice(512, 256);
            var rgb = source[..(pixelCount * 3)];
            for (var pixel = 0; pixel < pixelCount; pixel++)
            {
                var offset = pixel * 3;
                red[pixel] = redTable[rgb[offset]];
                green[pixel] = greenTable[rgb[offset + 1]];
                blue[pixel] = blueTable[rgb[offset + 2]];
            }

            return;
        }

        for (var channel = 0; channel < sourceChannels; channel++)
        {
            var channelTable = table.Slice(channel * 256, 256);
            for (var pixel = 0; pixel < pixelCount; pixel++)
            {
                destination[output.Index(channel, pixel)] = channelTable[source[pixel * sourceChannels + channel]];
            }
        }
    }

    private static void WriteBilinear(
        ReadOnlySpan<byte> source, int sourceChannels, int sourceWidth, int sourceHeight,
        in TensorLayout output, Span<float> destination)
    {
        var columns = SamplePositions(sourceWidth, output.Width);
        var rows = SamplePositions(sourceHeight, output.Height);
        var rowLength = sourceWidth * sourceChannels;

        for (var y = 0; y < output.Height; y++)
        {
            var row = rows[y];
            var upper = source.Slice(row.Near * rowLength, rowLength);
            var lower = source.Slice(row.Far * rowLength, rowLength);
            for (var x = 0; x < output.Width; x++)
            {
                var column = columns[x];
                var left = column.Near * sourceChannels;
                var right = column.Far * sourceChannels;
                var pixel = y * output.Width + x;
                for (var channel = 0; channel < sourceChannels; channel++)
                {
                    // PyTorch's upsample_bilinear2d expression, term for term.
                    var value =
                        row.NearWeight * (column.NearWeight * upper[left + channel] + column.FarWeight * upper[right + channel]) +
                        row.FarWeight * (column.NearWeight * lower[left + channel] + column.FarWeight * lower[right + channel]);
                    destination[output.Index(channel, pixel)] = output.Normalise(value, channel);
                }
            }
        }
    }

    /// <summary>For each output coordinate, the two source coordinates it blends and their weights.</summary>
    private static SamplePosition[] SamplePositions(int sourceSize, int outputSize)
    {
        var scale = (float)sourceSize / outputSize;
        var positions = new SamplePosition[outputSize];
        for (var i = 0; i < outputSize; i++)
        {
            var centre = Math.Max(scale * (i + 0.5f) - 0.5f, 0f);
            var near = Math.Min((int)centre, sourceSize - 1);
            var far = near < sourceSize - 1 ? near + 1 : near;
            var farWeight = centre - near;
            positions[i] = new SamplePosition(near, far, 1f - farWeight, farWeight);
        }

        return positions;
    }

    /// <summary>ITU-R 601-2 luma in PIL's integer form (weights 19595, 38470, 7471 of 65536, rounded), so gray stays exact.</summary>
    private static void ToLuma(ReadOnlySpan<byte> rgb, Span<byte> luma)
    {
        for (int pixel = 0, offset = 0; pixel < luma.Length; pixel++, offset += 3)
        {
            luma[pixel] = (byte)((rgb[offset] * 19595 + rgb[offset + 1] * 38470 + rgb[offset + 2] * 7471 + 0x8000) >> 16);
        }
    }

    private readonly record struct SamplePosition(int Near, int Far, float NearWeight, float FarWeight);

    /// <summary>Where (channel, pixel) goes in the destination, and how a value is normalised.</summary>
    private readonly struct TensorLayout
    {
        private readonly int _channelStride;
        private readonly int _pixelStride;
        private readonly float _scale;
        private readonly float[] _mean;
        private readonly float[] _std;

        public TensorLayout(ImagePreprocessing spec)
        {
            Width = spec.Width;
            Height = spec.Height;
            var planar = spec.Layout == ImagePreprocessing.LayoutNchw;
            _channelStride = planar ? spec.Width * spec.Height : 1;
            _pixelStride = planar ? 1 : spec.Channels;
            _scale = spec.Scale;
            _mean = spec.Mean;
            _std = spec.Std;
        }

        public int Width { get; }

        public int Height { get; }

        /// <summary>Channel planes one after the other (NCHW), rather than channels interleaved per pixel (NHWC).</summary>
        public bool IsPlanar => _pixelStride == 1 && _channelStride > 1;

        public int Index(int channel, int pixel) => channel * _channelStride + pixel * _pixelStride;

        // Written as the manifest states it (scale, subtract, divide) rather than folded into one
        // multiply-add, so values match a training pipeline's Normalize to the last bit.
        public float Normalise(float pixel, int channel) => (pixel * _scale - _mean[channel]) / _std[channel];
    }
}
