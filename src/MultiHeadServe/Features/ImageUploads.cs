using System.Runtime.InteropServices;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using MultiHeadServe.Features.Images;

namespace MultiHeadServe.Features;

/// <summary>
/// Image uploads, besides base64 in JSON: the raw image as the body (<c>image/png</c>, <c>image/jpeg</c>,
/// <c>image/webp</c>: one row) or <c>multipart/form-data</c> carrying image files (one row per file, in
/// request order). Splits a body already read by <see cref="RequestBody"/> into its images; decoding is the
/// fetcher's. The format of each image is still chosen by its magic bytes, not by the declared type.
/// </summary>
internal static class ImageUploads
{
    public const string Multipart = "multipart/form-data";

    /// <summary>What the 415 of an image endpoint lists.</summary>
    public static readonly string AcceptedTypes =
        $"application/json, {string.Join(", ", EncodedImageFormat.All.Select(f => f.MediaType))} or {Multipart}";

    /// <summary>True when the Content-Type asks for an upload (an image/* type or a multipart form), accepted or not.</summary>
    public static bool IsUpload(string? contentType)
    {
        var mediaType = RequestBody.MediaType(contentType);
        return mediaType.StartsWith("image/", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals(Multipart, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Checks the Content-Type of an upload before its body is read.</summary>
    /// <exception cref="FeatureRequestException">415 for an image type other than PNG, JPEG or WebP; 400 for a form without a boundary.</exception>
    public static void Validate(string? contentType)
    {
        if (RequestBody.IsMediaType(contentType, Multipart))
        {
            _ = Boundary(contentType!);
            return;
        }

        var mediaType = RequestBody.MediaType(contentType).ToString();
        if (EncodedImageFormat.FromMediaType(mediaType) is null)
        {
            throw RequestBody.UnsupportedMediaType($"{mediaType} is not accepted: send {AcceptedTypes}.");
        }
    }

    /// <summary>
    /// The images of an upload: the body itself for a raw image, or each file of a form in order. A raw image is
    /// returned in place; the files of a form are copied out of it.
    /// </summary>
    /// <exception cref="FeatureRequestException">400 naming the part: a part that is not a file, an empty file, no file, more than <paramref name="maxFiles"/>, a malformed form.</exception>
    public static async Task<IReadOnlyList<UploadedImage>> SplitAsync(string contentType, ReadOnlyMemory<byte> body, int maxFiles, CancellationToken cancellationToken)
    {
        if (!RequestBody.IsMediaType(contentType, Multipart))
        {
            return [new UploadedImage("body", body)];
        }

        if (!MemoryMarshal.TryGetArray(body, out var segment))
        {
            throw new InvalidOperationException("a pooled body is always backed by an array");
        }

        using var stream = new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false);
        var reader = new MultipartReader(Boundary(contentType), stream);
        var images = new List<UploadedImage>();
        try
        {
            while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
            {
                var disposition = section.GetContentDispositionHeader();
                var name = HeaderUtilities.RemoveQuotes(disposition?.Name ?? "").ToString();
                var field = $"{(name.Length == 0 ? "image" : name)}[{images.Count}]";
                if (disposition is null || !disposition.IsFileDisposition())
                {
                    throw FeatureRequestException.BadField(field,
                        $"form part '{name}' is not a file: send each image as a file part (curl -F image=@a.png); choose heads with ?heads=.");
                }

                if (images.Count == maxFiles)
                {
                    throw FeatureRequestException.BadField(field,
                        $"a form may carry between 1 and {maxFiles} images (Serve:MaxInstances); this one carries more.");
                }

                using var file = new MemoryStream();
                await section.Body.CopyToAsync(file, cancellationToken);
                if (file.Length == 0)
                {
                    throw FeatureRequestException.BadField(field, $"the file '{HeaderUtilities.RemoveQuotes(disposition.FileName)}' is empty.");
                }

                images.Add(new UploadedImage(field, file.ToArray()));
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            // MultipartReader's words for a body that is not the form its Content-Type announces.
            throw FeatureRequestException.BadField("body", $"the multipart/form-data body is malformed: {ex.Message}");
        }

        if (images.Count == 0)
        {
            throw FeatureRequestException.BadField("image", "the form carries no file: send one or more images as file parts (curl -F image=@a.png).");
        }

        return images;
    }

    private static string Boundary(string contentType)
    {
        var boundary = MediaTypeHeaderValue.TryParse(contentType, out var header) ? HeaderUtilities.RemoveQuotes(header.Boundary).ToString() : "";
        if (boundary.Length is 0 or > 70)
        {
            throw FeatureRequestException.BadField("Content-Type", "multipart/form-data needs a boundary parameter of 1 to 70 characters (RFC 2046).");
        }

        return boundary;
    }
}

/// <summary>One uploaded image: where it came from (for problems) and its encoded bytes.</summary>
/// <param name="Field">The body (<c>body</c>) or the form part (<c>image[1]</c>: part name and row).</param>
/// <param name="Encoded">The file's bytes, valid while the request's body is.</param>
internal readonly record struct UploadedImage(string Field, ReadOnlyMemory<byte> Encoded);
