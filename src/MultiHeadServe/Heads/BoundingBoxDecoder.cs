using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>
/// Four values in the manifest's box format, normalised or in model-input pixels, to normalised corners
/// clipped to the image, plus pixel corners in the request's original image when its size is known.
/// </summary>
internal sealed class BoundingBoxDecoder : HeadDecoder
{
    private readonly BoxFormat _format;
    private readonly bool _normalized;

    public BoundingBoxDecoder(HeadSpec spec, int? outputWidth)
        : base(spec, RequireWidth(spec, 4, outputWidth, "output", "a bbox head reads four values per row"))
    {
        _format = spec.BoxFormat;
        _normalized = spec.Normalized;
    }

    private protected override HeadResult DecodeRow(ReadOnlySpan<float> row, DecodeContext context)
    {
        var box = BoxCorners.From(row, _format);
        if (!_normalized)
        {
            // The model speaks in its input's pixels; dividing by that size gives the same box as a fraction
            // of the image, which is what lets the original image's size place it.
            var input = context.ModelInputSize is { Width: > 0, Height: > 0 } size
                ? size
                : throw new InvalidOperationException(
                    $"head '{HeadName}' emits pixel boxes (normalized: false): the decode context needs the model's input size");
            box = new BoxCorners(box.X1 / input.Width, box.Y1 / input.Height, box.X2 / input.Width, box.Y2 / input.Height);
        }

        box = box.Sorted();
        var normalised = new BoxCorners(Clip(box.X1, 1), Clip(box.Y1, 1), Clip(box.X2, 1), Clip(box.Y2, 1));

        BoxCoordinates? pixels = null;
        if (context.ImageSize is { Width: > 0, Height: > 0 } image)
        {
            pixels = Coordinates(new BoxCorners(
                Clip(normalised.X1 * image.Width, image.Width),
                Clip(normalised.Y1 * image.Height, image.Height),
                Clip(normalised.X2 * image.Width, image.Width),
                Clip(normalised.Y2 * image.Height, image.Height)));
        }

        return new BoundingBoxResult(Coordinates(normalised), BoxFormat.Xyxy.ManifestName(), pixels);
    }

    private static double Clip(double value, double max) => Math.Clamp(value, 0, max);

    private BoxCoordinates Coordinates(BoxCorners box) =>
        new(Finite(box.X1, "xMin"), Finite(box.Y1, "yMin"), Finite(box.X2, "xMax"), Finite(box.Y2, "yMax"));
}
