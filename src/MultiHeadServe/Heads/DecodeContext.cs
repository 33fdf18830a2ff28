namespace MultiHeadServe.Heads;

/// <summary>A width and height in pixels.</summary>
public readonly record struct ImageSize(int Width, int Height);

/// <summary>
/// What a decoder may need to know about the request besides the head's output row.
/// </summary>
/// <param name="ImageSize">
/// The size of the request's original image (before resizing). Box heads add pixel coordinates in this
/// image when it is known.
/// </param>
/// <param name="ModelInputSize">
/// The width and height of the model's input image. Box heads whose manifest says <c>normalized: false</c>
/// emit coordinates in this pixel space and need it to normalise them.
/// </param>
public sealed record DecodeContext(ImageSize? ImageSize = null, ImageSize? ModelInputSize = null)
{
    /// <summary>A context for requests without an image (tabular models).</summary>
    public static DecodeContext None { get; } = new();
}
