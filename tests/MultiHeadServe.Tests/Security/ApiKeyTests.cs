using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Security;

/// <summary>With API keys configured, no endpoint but health and metrics answers without one.</summary>
public sealed class ApiKeyTests
{
    private const string Key = "k3y-for-tests";

    private static readonly object RankingRow = new { user_id = "u0042", item_id = "i0007" };

    [Fact]
    public async Task EveryRouteButHealthAndMetricsRefusesARequestWithoutAValidKey()
    {
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Security:ApiKeys:0"] = "another-key", ["Security:ApiKeys:1"] = Key });
        using var client = app.CreateClient();
        var routes = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => (Pattern: e.RoutePattern.RawText!, Methods: e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods ?? ["GET"]))
            .ToList();
        Assert.True(routes.Count > 15, $"Only {routes.Count} routes found.");

        var open = new[] { "/healthz", "/readyz", "/metrics" };
        foreach (var (pattern, methods) in routes)
        {
            var path = Concrete(pattern);
            foreach (var method in methods)
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "GET" ? null : JsonContent.Create(RankingRow) };
                using var response = await client.SendAsync(request);
                // gRPC reflection describes the service and holds no data: open, like the OpenAPI document; gRPC's
                // health checks are the probes' other wire, open like /healthz and /readyz.
                if (open.Contains(pattern) || pattern.TrimStart('/').StartsWith("grpc.reflection.", StringComparison.Ordinal) ||
                    pattern.TrimStart('/').StartsWith("grpc.health.", StringComparison.Ordinal))
                {
                    Assert.NotEqual(HttpStatusCode.Unauthorized, response.StatusCode);
                    continue;
                }

                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} answered {(int)response.StatusCode} without a key.");
                Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
                var body = await response.JsonAsync();
                if (pattern.StartsWith("/v2", StringComparison.Ordinal))
                {
                    Assert.Contains("API key", body.GetProperty("error").GetString(), StringComparison.Ordinal);
                }
                else
                {
                    Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                    Assert.Equal("Authorization", body.GetProperty("field").GetString());
                }
            }
        }
    }

    [Fact]
    public async Task AValidKeyAsBearerOrHeaderIsAcceptedAndAWrongOneIsNot()
    {
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Security:ApiKeys:0"] = Key });
        using var client = app.CreateClient();

        async Task<HttpStatusCode> PredictAsync(Action<HttpRequestHeaders> authenticate)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/models/ranking/predict") { Content = JsonContent.Create(RankingRow) };
            authenticate(request.Headers);
            return (await client.SendAsync(request)).StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await PredictAsync(h => h.Authorization = new AuthenticationHeaderValue("Bearer", Key)));
        Assert.Equal(HttpStatusCode.OK, await PredictAsync(h => h.Add("X-Api-Key", Key)));
        Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(h => h.Authorization = new AuthenticationHeaderValue("Bearer", Key + "x")));
        Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(h => h.Add("X-Api-Key", Key[..^1])));
        Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(h => h.Authorization = new AuthenticationHeaderValue("Basic", Key)));
    }

    [Fact]
    public async Task KeysComeFromAMountedSecretFileAndTheDocumentShowsTheScheme()
    {
        var file = Path.GetTempFileName();
        await File.WriteAllLinesAsync(file, ["# rotated weekly", "", Key]);
        try
        {
            await using var app = new ServeFactory(new Dictionary<string, string?> { ["Security:ApiKeyFile"] = file });
            using var client = app.CreateClient();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);

            var predict = await client.PostJsonAsync("/v1/models/ranking/predict", RankingRow);
            var document = await (await client.GetAsync("/swagger/v1/swagger.json")).JsonAsync();

            Assert.Equal(HttpStatusCode.OK, predict.StatusCode);
            var scheme = document.GetProperty("components").GetProperty("securitySchemes").GetProperty("ApiKey");
            Assert.Equal("http", scheme.GetProperty("type").GetString());
            Assert.Equal("bearer", scheme.GetProperty("scheme").GetString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task WithoutKeysEverythingIsOpenAndTheDocumentHasNoScheme()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var predict = await client.PostJsonAsync("/v1/models/ranking/predict", RankingRow);
        var document = await (await client.GetAsync("/swagger/v1/swagger.json")).JsonAsync();

        Assert.Equal(HttpStatusCode.OK, predict.StatusCode);
        Assert.False(document.TryGetProperty("components", out var components) && components.TryGetProperty("securitySchemes", out _));
    }

    private static string Concrete(string pattern) => pattern
        .Replace("{model}", "ranking", StringComparison.Ordinal)
        .Replace("{head}", "click", StringComparison.Ordinal)
        .Replace("{version}", "1", StringComparison.Ordinal);
}
