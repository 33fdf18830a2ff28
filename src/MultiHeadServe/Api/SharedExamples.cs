using System.Globalization;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiHeadServe.Api;

/// <summary>
/// Writes every example body once, under <c>components/examples</c>, and references it from each operation that shows
/// it. The demo bodies are real: an image model's picture and its input tensor are hundreds of kilobytes each, and the
/// same body is shown on the plain, per-head and versioned routes. A request keeps its example's name as its key; an
/// answer, named after the request it answers, is keyed "-answer" (or "-head-answer" on the per-head routes).
/// </summary>
public sealed class SharedExamples : IDocumentFilter
{
    public void Apply(OpenApiDocument swaggerDoc, DocumentFilterContext context)
    {
        var keys = new Dictionary<string, string>(StringComparer.Ordinal); // the example's contents -> its component key
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (media, role) in MediaTypes(swaggerDoc))
        {
            foreach (var (name, example) in media.Examples!.ToList())
            {
                if (example is not OpenApiExample body)
                {
                    continue; // already a reference
                }

                var contents = Contents(body);
                if (!keys.TryGetValue(contents, out var key))
                {
                    var named = role is null ? name : $"{name}-{role}";
                    key = named;
                    for (var n = 2; !taken.Add(key); n++)
                    {
                        key = string.Create(CultureInfo.InvariantCulture, $"{named}-{n}");
                    }

                    keys[contents] = key;
                    swaggerDoc.AddComponent<IOpenApiExample>(key, body);
                }

                media.Examples![name] = new OpenApiExampleReference(key, swaggerDoc);
            }
        }
    }

    /// <summary>Every media type with examples, and what its examples are: null for requests and refusals.</summary>
    private static IEnumerable<(OpenApiMediaType Media, string? Role)> MediaTypes(OpenApiDocument document) =>
        from path in document.Paths
        from operation in (path.Value.Operations ?? []).Values
        let answer = path.Key.EndsWith("/heads/{head}/predict", StringComparison.Ordinal) ? "head-answer" : "answer"
        let requests = (operation.RequestBody?.Content?.Values ?? []).Select(media => (media, (string?)null))
        let responses = (operation.Responses ?? [])
            .Where(r => r.Value is OpenApiResponse)
            .SelectMany(r => (((OpenApiResponse)r.Value).Content?.Values ?? []).Select(media => (media, r.Key.StartsWith('2') ? answer : null)))
        from entry in requests.Concat(responses)
        where entry.media.Examples is { Count: > 0 }
        select entry;

    /// <summary>The example as the document writes it: equal text, equal example.</summary>
    private static string Contents(OpenApiExample example)
    {
        using var text = new StringWriter(CultureInfo.InvariantCulture);
        example.SerializeAsV3(new OpenApiJsonWriter(text, new OpenApiJsonWriterSettings { Terse = true }));
        return text.ToString();
    }
}
