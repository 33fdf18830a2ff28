namespace MultiHeadServe.Features.Images;

/// <summary>
/// How a decoded image becomes a model's input tensor: the manifest's <c>features.image</c>
/// section. The tensor holds <c>Channels * Height * Width</c> floats per image, where each value
/// is <c>(pixel * Scale - Mean[c]) / Std[c]</c> for a pixel in 0..255.
/// </summary>
/// <param name="Width">The width the model takes, in pixels.</param>
/// <param name="Height">The height the model takes, in pixels.</param>
/// <param name="Channels">3 for RGB (in that order), 1 for grayscale (ITU-R 601 luma, as PIL's <c>convert("L")</c>).</param>
/// <param name="Layout"><c>nchw</c> (planar: all of R, then G, then B) or <c>nhwc</c> (interleaved).</param>
/// <param name="Resize"><c>bilinear</c>, or <c>none</c>: an image of another size is rejected.</param>
/// <param name="Scale">Multiplies the 0..255 pixel value first, e.g. 1/255.</param>
/// <param name="Mean">Subtracted per channel after scaling; one value per channel.</param>
/// <param name="Std">Divides per channel after the mean is subtracted; one non-zero value per channel.</param>
/// <remarks>Treat as immutable once built: the arrays are read on every request.</remarks>
public sealed record ImagePreprocessing(
    int Width, int Height, int Channels, string Layout, string Resize, float Scale, float[] Mean, float[] Std)
{
    /// <summary>Planar layout: channel, then row, then column.</summary>
    public const string LayoutNchw = "nchw";

    /// <summary>Interleaved layout: row, then column, then channel.</summary>
    public const string LayoutNhwc = "nhwc";

    /// <summary>Resample to the model's size (half-pixel centres; see <see cref="ImageTensorWriter"/>).</summary>
    public const string ResizeBilinear = "bilinear";

    /// <summary>Never resample: an image of another size is the client's error.</summary>
    public const string ResizeNone = "none";

    /// <summary>Floats per image in the tensor: <c>Channels * Height * Width</c>.</summary>
    public int TensorLength => Channels * Height * Width;

    /// <summary>
    /// Throws when the specification cannot be applied; call it when the manifest is loaded so a
    /// bad one stops start-up. The exception's <see cref="ArgumentException.ParamName"/> is the
    /// manifest field (<c>width</c>, <c>height</c>, <c>channels</c>, <c>layout</c>, <c>resize</c>,
    /// <c>scale</c>, <c>mean</c>, <c>std</c>).
    /// </summary>
    /// <exception cref="ArgumentException">A field is out of range or inconsistent with <see cref="Channels"/>.</exception>
    public void Validate()
    {
        // Messages are built only on failure: Write calls this on every request.
        if (Width <= 0)
        {
            throw Invalid("width", $"width must be positive, not {Width}");
        }

        if (Height <= 0)
        {
            throw Invalid("height", $"height must be positive, not {Height}");
        }

        if (Channels is not (1 or 3))
        {
            throw Invalid("channels", $"channels must be 3 (RGB) or 1 (grayscale), not {Channels}");
        }

        if ((long)Channels * Height * Width > Array.MaxLength)
        {
            throw Invalid("width", $"a {Width}x{Height} tensor is too large");
        }

        if (Layout is not (LayoutNchw or LayoutNhwc))
        {
            throw Invalid("layout", $"layout must be {LayoutNchw} or {LayoutNhwc}, not '{Layout}'");
        }

        if (Resize is not (ResizeBilinear or ResizeNone))
        {
            throw Invalid("resize", $"resize must be {ResizeBilinear} or {ResizeNone}, not '{Resize}'");
        }

        if (!float.IsFinite(Scale) || Scale == 0)
        {
            throw Invalid("scale", $"scale must be a finite non-zero number, not {Scale}");
        }

        ValidatePerChannel(Mean, "mean", allowZero: true);
        ValidatePerChannel(Std, "std", allowZero: false);
    }

    private void ValidatePerChannel(float[]? values, string field, bool allowZero)
    {
        if (values is null)
        {
            throw Invalid(field, $"{field} is missing; give one value per channel");
        }

        if (values.Length != Channels)
        {
            throw Invalid(field, $"{field} has {values.Length} values; channels is {Channels}");
        }

        foreach (var value in values)
        {
            if (!float.IsFinite(value) || (!allowZero && value == 0))
            {
                throw Invalid(field, $"{field} values must be finite{(allowZero ? "" : " and non-zero")}, not {value}");
            }
        }
    }

    private static ArgumentException Invalid(string field, string message) => new(message, field);
}
