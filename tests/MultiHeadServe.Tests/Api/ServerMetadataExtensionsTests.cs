using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>/v2's server metadata announces the extensions it serves: the repository extension only with API keys.</summary>
public sealed class ServerMetadataExtensionsTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheRepositoryExtensionIsAnnouncedWhereItIsServed(bool keys)
    {
        await using var app = new ServeFactory(keys ? new Dictionary<string, string?> { ["Security:ApiKeys:0"] = "secret-key-123" } : null);
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", "secret-key-123");

        var metadata = await (await client.GetAsync("/v2")).JsonAsync();
        var extensions = metadata.GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).ToList();

        Assert.Contains("binary_tensor_data", extensions);
        Assert.Equal(keys, extensions.Contains("model_repository"));
    }
}
