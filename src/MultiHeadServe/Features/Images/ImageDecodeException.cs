namespace MultiHeadServe.Features.Images;

/// <summary>
/// The request's image cannot become the model's input: it is empty, not base64, not PNG, JPEG
/// or WebP, corrupt or truncated, larger than the configured limits, or of a size the model does
/// not take when the manifest forbids resizing. It is the client's fault: the service answers
/// with a 400 problem+json quoting <see cref="Reason"/>.
/// </summary>
public sealed class ImageDecodeException : Exception
{
    public ImageDecodeException()
        : this("the image could not be decoded")
    {
    }

    /// <param name="reason">What is wrong with the image, phrased for the client.</param>
    public ImageDecodeException(string reason)
        : base(reason) => Reason = reason;

    /// <param name="reason">What is wrong with the image, phrased for the client.</param>
    /// <param name="innerException">The underlying failure.</param>
    public ImageDecodeException(string reason, Exception innerException)
        : base(reason, innerException) => Reason = reason;

    /// <summary>What is wrong with the image, phrased for the client, e.g. <c>corrupt PNG: the image data is damaged</c>.</summary>
    public string Reason { get; }

    /// <summary>The image is fine but the request's pixel budget is spent: 413, not 400.</summary>
    public bool OverBudget { get; init; }
}
