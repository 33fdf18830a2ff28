using System.Net;
using System.Text.Json;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// What the served OpenAPI document promises, read as a client generator or a validator would: head results under a
/// kind discriminator, open request rows, problems with field and traceId, Retry-After where the service sends it,
/// examples that carry their model, labels and real answers.
/// </summary>
public sealed class OpenApiContractTests
{
    [Fact]
    public async Task HeadResultsAreOneSchemaPerKindUnderTheKindDiscriminator()
    {
        var document = await DocumentAsync();
        var schemas = document.GetProperty("components").GetProperty("schemas");

        var headResult = schemas.GetProperty("HeadResult");
        Assert.Equal("kind", headResult.GetProperty("discriminator").GetProperty("propertyName").GetString());
        var mapping = headResult.GetProperty("discriminator").GetProperty("mapping").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        Assert.Equal(["classification", "multilabel", "binary", "regression", "bbox", "embedding"], mapping.Keys);
        foreach (var (_, reference) in mapping)
        {
            var kind = schemas.GetProperty(reference!.Split('/')[^1]);
            Assert.Equal("#/components/schemas/HeadResult", kind.GetProperty("allOf")[0].GetProperty("$ref").GetString());
            Assert.False(kind.GetProperty("allOf")[1].TryGetProperty("additionalProperties", out _), $"{reference} refuses the base's kind");
        }

        // No null branch anywhere: every use of a head result refers to the base.
        Assert.DoesNotContain("\"enum\":[null]", System.Text.RegularExpressions.Regex.Replace(document.GetRawText(), @"\s", ""), StringComparison.Ordinal);
        Assert.Equal("#/components/schemas/HeadResult",
            schemas.GetProperty("PredictResponse").GetProperty("properties").GetProperty("heads").GetProperty("additionalProperties").GetProperty("$ref").GetString());
    }

    [Fact]
    public async Task ProblemsRetryAfterAndRequestRowsAreDescribedAsSent()
    {
        var document = await DocumentAsync();
        var schemas = document.GetProperty("components").GetProperty("schemas");

        var problem = schemas.GetProperty("ProblemDetails").GetProperty("properties");
        Assert.True(problem.TryGetProperty("field", out _));
        Assert.True(problem.TryGetProperty("traceId", out _));
        Assert.True(schemas.GetProperty("PredictRequest").GetProperty("additionalProperties").ValueKind == JsonValueKind.Object, "entity keys are additional members");

        var predict = document.GetProperty("paths").GetProperty("/v1/models/{model}/predict").GetProperty("post");
        foreach (var status in new[] { "429", "503" })
        {
            Assert.True(predict.GetProperty("responses").GetProperty(status).GetProperty("headers").TryGetProperty("Retry-After", out _), $"{status} without Retry-After");
        }

        Assert.False(document.GetProperty("paths").GetProperty("/readyz").GetProperty("get").GetProperty("responses").GetProperty("503").TryGetProperty("headers", out _),
            "readiness sends no Retry-After");
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                Assert.False(string.IsNullOrEmpty(operation.Value.GetProperty("summary").GetString()), $"{path.Name} has no summary");
                Assert.False(string.IsNullOrEmpty(operation.Value.GetProperty("description").GetString()), $"{path.Name} has no description");
            }
        }
    }

    [Fact]
    public async Task EveryModelHasLabelledEvaluateAndV2ExamplesWithRealAnswers()
    {
        var document = await DocumentAsync();
        var paths = document.GetProperty("paths");
        string[] models = ["conversion", "ranking", "ranking-mtl", "shapes"];

        var evaluate = Examples(document, "/v1/models/{model}/evaluate");
        var infer = Examples(document, "/v2/models/{model}/infer");
        foreach (var model in models)
        {
            var body = evaluate.Single(e => e.GetProperty("x-model").GetString() == model).GetProperty("value");
            Assert.True(body.GetProperty("labels").EnumerateObject().Any(), $"{model}'s evaluate example has no labels");
            var tensor = infer.Single(e => e.GetProperty("x-model").GetString() == model).GetProperty("value").GetProperty("inputs")[0];
            var shape = tensor.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());
            Assert.Equal(shape, tensor.GetProperty("data").GetArrayLength());
        }

        // The 200 example of predict is what the service answered: it names the model and every served head.
        var answers = paths.GetProperty("/v1/models/{model}/predict").GetProperty("post").GetProperty("responses").GetProperty("200")
            .GetProperty("content").GetProperty("application/json").GetProperty("examples");
        var shapes = answers.GetProperty("shapes-image").Resolved(document).GetProperty("value");
        Assert.Equal("shapes", shapes.GetProperty("model").GetString());
        Assert.Equal("classification", shapes.GetProperty("heads").GetProperty("class").GetProperty("kind").GetString());
        Assert.Equal("bbox", shapes.GetProperty("heads").GetProperty("bbox").GetProperty("kind").GetString());
        Assert.True(shapes.GetProperty("timings").GetProperty("batchRows").GetInt32() >= 1);
    }

    [Fact]
    public async Task EveryExampleBodyIsWrittenOnceAndReferencedWhereverItIsShown()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var text = await client.GetStringAsync("/swagger/v1/swagger.json");
        using var json = JsonDocument.Parse(text);
        var document = json.RootElement;
        var shared = document.GetProperty("components").GetProperty("examples");

        var references = new List<string>();
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                var bodies = operation.Value.TryGetProperty("requestBody", out var request) ? [request] : new List<JsonElement>();
                bodies.AddRange(operation.Value.GetProperty("responses").EnumerateObject().Select(r => r.Value));
                foreach (var media in bodies.Where(b => b.TryGetProperty("content", out _)).SelectMany(b => b.GetProperty("content").EnumerateObject()))
                {
                    foreach (var example in media.Value.TryGetProperty("examples", out var examples) ? examples.EnumerateObject() : default)
                    {
                        var reference = example.Value.GetProperty("$ref").GetString()!;
                        Assert.StartsWith("#/components/examples/", reference, StringComparison.Ordinal);
                        references.Add(reference["#/components/examples/".Length..]);
                    }
                }
            }
        }

        // Every shared example is used, each is a different body, and the demo image shown on the four predict routes
        // (plain, one head, versioned, versioned head) is in the text once for each body that holds it (its predict
        // example, and its evaluate example beside labels).
        Assert.Equal(shared.EnumerateObject().Select(e => e.Name).Order(StringComparer.Ordinal), references.Distinct().Order(StringComparer.Ordinal));
        var contents = shared.EnumerateObject().Select(e => e.Value.GetRawText()).ToList();
        Assert.Equal(contents.Count, contents.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(4, references.Count(r => r == "shapes-image"));
        var image = shared.GetProperty("shapes-image").GetProperty("value").GetProperty("image").GetString()!;
        Assert.Equal(contents.Count(c => c.Contains(image, StringComparison.Ordinal)), text.Split(image).Length - 1);
        Assert.Equal(2, contents.Count(c => c.Contains(image, StringComparison.Ordinal)));
        Assert.Equal("shapes", shared.GetProperty("shapes-image").GetProperty("x-model").GetString());
        // Written without indentation: the examples' numbers are not one per line.
        Assert.DoesNotContain('\n', text);
    }

    [Fact]
    public async Task TheDocumentIsSentCompressedToClientsThatAcceptItAndTheApiIsNot()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var plain = await client.GetByteArrayAsync("/swagger/v1/swagger.json");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/swagger/v1/swagger.json");
        request.Headers.AcceptEncoding.ParseAdd("gzip");
        using var response = await client.SendAsync(request);
        var compressed = await response.Content.ReadAsByteArrayAsync();
        using var unzip = new System.IO.Compression.GZipStream(new MemoryStream(compressed), System.IO.Compression.CompressionMode.Decompress);
        using var inflated = new MemoryStream();
        await unzip.CopyToAsync(inflated);

        Assert.Equal(["gzip"], response.Content.Headers.ContentEncoding);
        Assert.Equal(plain, inflated.ToArray());
        Assert.True(compressed.Length * 2 < plain.Length, $"{compressed.Length} compressed bytes for a {plain.Length}-byte document");

        // The API's own answers are not compressed: their bodies are small and their CPU is the product.
        using var models = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        models.Headers.AcceptEncoding.ParseAdd("gzip");
        using var listing = await client.SendAsync(models);
        Assert.Equal(HttpStatusCode.OK, listing.StatusCode);
        Assert.Empty(listing.Content.Headers.ContentEncoding);
    }

    private static async Task<JsonElement> DocumentAsync()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        return await (await client.GetAsync("/swagger/v1/swagger.json")).JsonAsync();
    }

    private static List<JsonElement> Examples(JsonElement document, string path) =>
        [.. document.GetProperty("paths").GetProperty(path).GetProperty("post").GetProperty("requestBody").GetProperty("content")
            .GetProperty("application/json").GetProperty("examples").EnumerateObject().Select(e => e.Value.Resolved(document))];
}
