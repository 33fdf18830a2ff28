using System.Text.Json;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>Reads the service's OpenAPI document as a client does: an example may be a reference to a shared one.</summary>
internal static class OpenApiJson
{
    private const string SharedExample = "#/components/examples/";

    /// <summary>The example itself: <paramref name="example"/>, or the shared example it references.</summary>
    public static JsonElement Resolved(this JsonElement example, JsonElement document) =>
        example.TryGetProperty("$ref", out var reference) && reference.GetString() is { } target && target.StartsWith(SharedExample, StringComparison.Ordinal)
            ? document.GetProperty("components").GetProperty("examples").GetProperty(target[SharedExample.Length..])
            : example;
}
