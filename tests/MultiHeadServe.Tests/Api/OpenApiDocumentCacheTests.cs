using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using MultiHeadServe.Api;
using MultiHeadServe.Tests.Infrastructure;
using MultiHeadServe.Tests.Repository;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// The OpenAPI document is built once per set of served models and server, then served from memory; loading or
/// unloading a model builds it again, examples included.
/// </summary>
public sealed class OpenApiDocumentCacheTests
{
    private const string Document = "/swagger/v1/swagger.json";

    [Fact]
    public async Task TheDocumentIsBuiltOncePerServerThenServedFromMemoryWithAnEntityTag()
    {
        using var repository = new TempRepository().With("shapes").With("ranking");
        await using var service = new ReloadingService(repository);
        var cache = service.Services.GetRequiredService<OpenApiDocumentCache>();

        using var first = await service.Client.GetAsync(Document);
        using var second = await service.Client.GetAsync(Document);
        var firstBytes = await first.Content.ReadAsByteArrayAsync();
        var secondBytes = await second.Content.ReadAsByteArrayAsync();
        using var revalidate = new HttpRequestMessage(HttpMethod.Get, Document);
        revalidate.Headers.IfNoneMatch.Add(second.Headers.ETag!);
        using var notModified = await service.Client.SendAsync(revalidate);
        using var otherHost = new HttpRequestMessage(HttpMethod.Get, Document);
        otherHost.Headers.Host = "models.example:8443";
        using var forOtherHost = await service.Client.SendAsync(otherHost);

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (first.StatusCode, second.StatusCode));
        Assert.Equal("application/json", first.Content.Headers.ContentType?.MediaType);
        Assert.Equal(firstBytes, secondBytes);
        Assert.NotNull(first.Headers.ETag);
        Assert.Equal(first.Headers.ETag, second.Headers.ETag);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());
        // The document names the server it was fetched from: another host gets its own.
        Assert.Equal(HttpStatusCode.OK, forOtherHost.StatusCode);
        Assert.Equal("http://localhost", Server(JsonDocument.Parse(firstBytes).RootElement));
        Assert.Equal("http://models.example:8443", Server((await forOtherHost.JsonAsync())));
        Assert.Equal((2L, 2L), (cache.Misses, cache.Hits));
    }

    [Fact]
    public async Task UnloadingAndLoadingAModelBuildsTheDocumentAgainWithItsExamples()
    {
        using var repository = new TempRepository().With("shapes").With("ranking");
        await using var service = new ReloadingService(repository);
        var cache = service.Services.GetRequiredService<OpenApiDocumentCache>();

        var before = await DocumentAsync(service);
        using var unload = await service.Client.PostAsync("/v2/repository/models/shapes/unload", null);
        var unloaded = await DocumentAsync(service);
        using var load = await service.Client.PostAsync("/v2/repository/models/shapes/load", null);
        var loaded = await DocumentAsync(service);
        var again = await DocumentAsync(service);

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (unload.StatusCode, load.StatusCode));
        Assert.Equal(["ranking", "shapes"], ModelNames(before));
        Assert.Contains("shapes-image", Examples(before));
        Assert.Equal(["ranking"], ModelNames(unloaded));
        Assert.DoesNotContain(Examples(unloaded), name => name.StartsWith("shapes-", StringComparison.Ordinal));
        Assert.Contains("ranking-keys", Examples(unloaded));
        Assert.Equal(["ranking", "shapes"], ModelNames(loaded));
        Assert.Contains("shapes-image", Examples(loaded));
        Assert.Contains("shapes-image-answer", Examples(loaded));
        Assert.Equal(loaded.GetRawText(), again.GetRawText());
        Assert.Equal((3L, 1L), (cache.Misses, cache.Hits));
    }

    private static async Task<JsonElement> DocumentAsync(ReloadingService service)
    {
        using var response = await service.Client.GetAsync(Document);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.JsonAsync();
    }

    private static string? Server(JsonElement document) => document.GetProperty("servers")[0].GetProperty("url").GetString();

    private static List<string> Examples(JsonElement document) =>
        [.. document.GetProperty("components").GetProperty("examples").EnumerateObject().Select(e => e.Name)];

    /// <summary>The values the predict route's {model} parameter lists.</summary>
    private static List<string?> ModelNames(JsonElement document) =>
        [.. document.GetProperty("paths").GetProperty("/v1/models/{model}/predict").GetProperty("post").GetProperty("parameters")
            .EnumerateArray().Single(p => p.GetProperty("name").GetString() == "model")
            .GetProperty("schema").GetProperty("enum").EnumerateArray().Select(v => v.GetString()).Order(StringComparer.Ordinal)];
}
