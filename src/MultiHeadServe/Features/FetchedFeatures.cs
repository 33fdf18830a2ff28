using System.Text.Json;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;

namespace MultiHeadServe.Features;

/// <summary>
/// The features of one request, fetched once by <see cref="FeatureFetchMiddleware"/> and handed to the
/// endpoint as a typed request feature (endpoints never touch the feature store). Owns its tensor and its share of the
/// <see cref="TensorBudget"/>, returned when the request ends.
/// </summary>
public sealed class FetchedFeatures : IDisposable
{
    private readonly TensorLease _tensor;
    private IDisposable? _body;

    internal FetchedFeatures(LoadedModel model, int rows, bool isSingleRow, TensorLease tensor, IReadOnlyList<ImageSize?> imageSizes,
        string source, IReadOnlyList<string>? requestedHeads, JsonDocument? document, double fetchMilliseconds)
    {
        Model = model;
        Rows = rows;
        IsSingleRow = isSingleRow;
        _tensor = tensor;
        ImageSizes = imageSizes;
        Source = source;
        RequestedHeads = requestedHeads;
        Document = document;
        FetchMilliseconds = fetchMilliseconds;
    }

    public LoadedModel Model { get; }

    /// <summary>Rows in the request (1, or the number of <c>instances</c> or of uploaded files).</summary>
    public int Rows { get; }

    /// <summary>
    /// The request is one row (a JSON row without <c>instances</c>, or a raw image body), answered as one
    /// prediction; otherwise rows were listed (<c>instances</c>, or the files of a form), answered as a list.
    /// </summary>
    public bool IsSingleRow { get; }

    /// <summary>The feature tensor, row-major: <see cref="Rows"/> × <see cref="LoadedModel.RowLength"/> floats.</summary>
    public ReadOnlyMemory<float> Tensor => _tensor.Buffer.AsMemory(0, Rows * Model.RowLength);

    /// <summary>Per row, the size of the image the client sent (image models), for pixel coordinates.</summary>
    public IReadOnlyList<ImageSize?> ImageSizes { get; }

    /// <summary>inline | store | image (or "mixed").</summary>
    public string Source { get; }

    /// <summary>Heads the client asked for (query or body), or null for every served head.</summary>
    public IReadOnlyList<string>? RequestedHeads { get; }

    /// <summary>The parsed body, for endpoint-specific fields such as labels; null for an image upload.</summary>
    public JsonDocument? Document { get; }

    public double FetchMilliseconds { get; }

    /// <summary>Takes the request body the <see cref="Document"/> reads from; released with it.</summary>
    internal void OwnBody(IDisposable body) => _body = body;

    /// <summary>
    /// Binds a handler's <see cref="FetchedFeatures"/> parameter to what the feature-fetch middleware fetched for this
    /// request, so handlers declare it rather than reading it out of the request's features.
    /// </summary>
    public static ValueTask<FetchedFeatures?> BindAsync(HttpContext context) => ValueTask.FromResult(context.Features.Get<FetchedFeatures>());

    public void Dispose()
    {
        _tensor.Dispose();
        Document?.Dispose();
        Interlocked.Exchange(ref _body, null)?.Dispose();
    }
}

/// <summary>
/// Marks a feature endpoint that also takes image uploads for image models: the raw image or a multipart form of
/// images (see <see cref="ImageUploads"/>), besides JSON.
/// </summary>
public sealed record ImageUploadMetadata;

/// <summary>Marks an endpoint whose request carries features: the middleware fetches them before it runs.</summary>
/// <param name="BodyType">The body's shape, for the OpenAPI document.</param>
/// <param name="EnvelopeFields">Top-level fields the endpoint reads besides the rows (e.g. labels for /evaluate).</param>
public sealed record FeatureFetchMetadata(Type BodyType, IReadOnlySet<string> EnvelopeFields) : JsonBodyMetadata(BodyType);

/// <summary>
/// Documents an endpoint's JSON body in the OpenAPI document. Used instead of <c>Accepts&lt;T&gt;()</c>, which
/// would make routing answer a wrong content type with a bare 415 before the endpoint can name the problem.
/// </summary>
public record JsonBodyMetadata(Type BodyType);
