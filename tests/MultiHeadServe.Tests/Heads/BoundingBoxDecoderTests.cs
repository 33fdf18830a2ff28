using MultiHeadServe.Heads;

namespace MultiHeadServe.Tests.Heads;

public sealed class BoundingBoxDecoderTests
{
    private static readonly DecodeContext Image640x320 = new(ImageSize: new ImageSize(640, 320));

    [Fact]
    public void NormalisedCornersPassThroughAndScaleToTheOriginalImage()
    {
        var decoder = Decoder("xyxy", normalized: true);

        var result = Decode(decoder, [0.1f, 0.2f, 0.5f, 0.6f], Image640x320);

        AssertBox((0.1, 0.2, 0.5, 0.6), result.Box);
        // 0.1·640, 0.2·320, 0.5·640, 0.6·320.
        AssertBox((64, 64, 320, 192), result.Pixels!);
        Assert.Equal("xyxy", result.Format);
    }

    [Fact]
    public void NormalisedCornerAndSizeBecomeCorners()
    {
        var result = Decode(Decoder("xywh", normalized: true), [0.1f, 0.2f, 0.3f, 0.4f], DecodeContext.None);

        // x2 = 0.1 + 0.3, y2 = 0.2 + 0.4.
        AssertBox((0.1, 0.2, 0.4, 0.6), result.Box);
        Assert.Null(result.Pixels);
    }

    [Fact]
    public void NormalisedCentreAndSizeBecomeCorners()
    {
        var result = Decode(Decoder("cxcywh", normalized: true), [0.5f, 0.5f, 0.2f, 0.4f], DecodeContext.None);

        // 0.5 ∓ 0.2/2 horizontally, 0.5 ∓ 0.4/2 vertically.
        AssertBox((0.4, 0.3, 0.6, 0.7), result.Box);
    }

    [Fact]
    public void PixelCornersAreNormalisedByTheModelInputSize()
    {
        var context = Image640x320 with { ModelInputSize = new ImageSize(64, 32) };

        var result = Decode(Decoder("xyxy", normalized: false), [16f, 8f, 48f, 24f], context);

        // 16/64, 8/32, 48/64, 24/32; then times the original 640 × 320.
        AssertBox((0.25, 0.25, 0.75, 0.75), result.Box);
        AssertBox((160, 80, 480, 240), result.Pixels!);
    }

    [Fact]
    public void PixelCornerAndSizeAreNormalisedByTheModelInputSize()
    {
        var context = new DecodeContext(ModelInputSize: new ImageSize(64, 32));

        var result = Decode(Decoder("xywh", normalized: false), [16f, 8f, 32f, 16f], context);

        // (16, 8) to (16 + 32, 8 + 16) = (48, 24) in a 64 × 32 input.
        AssertBox((0.25, 0.25, 0.75, 0.75), result.Box);
    }

    [Fact]
    public void PixelCentreAndSizeAreNormalisedByTheModelInputSize()
    {
        var context = new DecodeContext(ModelInputSize: new ImageSize(64, 32));

        var result = Decode(Decoder("cxcywh", normalized: false), [32f, 16f, 32f, 16f], context);

        // 32 ∓ 16 = 16..48 of 64, 16 ∓ 8 = 8..24 of 32.
        AssertBox((0.25, 0.25, 0.75, 0.75), result.Box);
    }

    [Fact]
    public void BoxPartlyOutsideTheImageIsClippedToIt()
    {
        var context = new DecodeContext(ImageSize: new ImageSize(100, 50));

        var result = Decode(Decoder("xyxy", normalized: true), [-0.1f, 0.5f, 0.4f, 1.2f], context);

        AssertBox((0, 0.5, 0.4, 1), result.Box);
        // 0·100, 0.5·50, 0.4·100, 1·50: never outside the 100 × 50 image.
        AssertBox((0, 25, 40, 50), result.Pixels!);
    }

    [Fact]
    public void SwappedCornersAreSortedSoMinIsNeverAboveMax()
    {
        var result = Decode(Decoder("xyxy", normalized: true), [0.6f, 0.7f, 0.2f, 0.1f], DecodeContext.None);

        AssertBox((0.2, 0.1, 0.6, 0.7), result.Box);
    }

    [Fact]
    public void NegativeSizeIsSortedToo()
    {
        var result = Decode(Decoder("xywh", normalized: true), [0.5f, 0.5f, -0.2f, -0.1f], DecodeContext.None);

        // Corners (0.5, 0.5) and (0.3, 0.4), sorted.
        AssertBox((0.3, 0.4, 0.5, 0.5), result.Box);
    }

    [Fact]
    public void PixelBoxesWithoutTheModelInputSizeAreAWiringError()
    {
        var decoder = Decoder("xyxy", normalized: false);

        var error = Assert.Throws<InvalidOperationException>(() => decoder.Decode([1f, 2f, 3f, 4f], DecodeContext.None));

        Assert.Contains("head 'bbox'", error.Message, StringComparison.Ordinal);
    }

    private static HeadDecoder Decoder(string format, bool normalized) =>
        HeadDecoder.Create(TestHeads.Spec("bbox", "bbox") with { BoxFormat = TestHeads.Parse<BoxFormat>(format), Normalized = normalized });

    private static BoundingBoxResult Decode(HeadDecoder decoder, float[] row, DecodeContext context) =>
        Assert.IsType<BoundingBoxResult>(decoder.Decode(row, context));

    private static void AssertBox((double XMin, double YMin, double XMax, double YMax) expected, BoxCoordinates actual)
    {
        var tolerance = 1e-6 * Math.Max(1, Math.Abs(expected.XMax) + Math.Abs(expected.YMax));
        TestHeads.Near(expected.XMin, actual.XMin, tolerance);
        TestHeads.Near(expected.YMin, actual.YMin, tolerance);
        TestHeads.Near(expected.XMax, actual.XMax, tolerance);
        TestHeads.Near(expected.YMax, actual.YMax, tolerance);
    }
}
