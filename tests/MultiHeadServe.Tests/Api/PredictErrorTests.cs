using System.Net;
using System.Text.Json;
using MultiHeadServe.Features.Images;
using MultiHeadServe.Tests.Features.Images;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>Every client mistake is a 4xx RFC 7807 problem naming what was wrong — never a 500, never a stack trace.</summary>
public sealed class PredictErrorTests
{
    [Fact]
    public async Task UnknownModelIs404()
    {
        var problem = await ProblemAsync(HttpStatusCode.NotFound, "/v1/models/nope/predict", """{"features":[1]}""");

        Assert.Contains("'nope'", Detail(problem), StringComparison.Ordinal);
        Assert.Equal("model", problem.GetProperty("field").GetString());
    }

    [Fact]
    public async Task UnknownHeadIs404OnBothRoutes()
    {
        var viaQuery = await ProblemAsync(HttpStatusCode.NotFound, "/v1/models/ranking/predict?heads=click,ctr", """{"user_id":"u0001","item_id":"i0001"}""");
        var viaRoute = await ProblemAsync(HttpStatusCode.NotFound, "/v1/models/ranking/heads/ctr/predict", """{"user_id":"u0001","item_id":"i0001"}""");

        Assert.Equal("ctr", viaQuery.GetProperty("head").GetString());
        Assert.Equal("heads", viaQuery.GetProperty("field").GetString());
        Assert.Contains("click, dwell, revenue", Detail(viaRoute), StringComparison.Ordinal);
        Assert.Equal("heads", viaRoute.GetProperty("field").GetString());
    }

    [Fact]
    public async Task HeadsInTheQueryAndTheBodyThatDisagreeAre400()
    {
        var conflict = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/ranking/predict?heads=click",
            """{"user_id":"u0001","item_id":"i0001","heads":["dwell"]}""");

        Assert.Equal("heads", conflict.GetProperty("field").GetString());
        Assert.Contains("disagree", Detail(conflict), StringComparison.Ordinal);
    }

    [Fact]
    public async Task HeadsInTheQueryAndTheBodyThatAgreeAreServed()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var response = await client.PostRawAsync("/v1/models/ranking/predict?heads=dwell,click", """{"user_id":"u0001","item_id":"i0001","heads":["click","dwell"]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["click", "dwell"], (await response.JsonAsync()).GetProperty("heads").EnumerateObject().Select(h => h.Name));
    }

    [Theory]
    [InlineData("""{"instances": [{"features": [1, 2]}, {"features": [1, 2 3]}]}""", "$.instances[1].features[2]")]
    [InlineData("""{"user_id": "u0001", "item_id": }""", "$.item_id")]
    [InlineData("""{"features": [1, 2""", "$.features[1]")]
    public async Task MalformedJsonIs400WithTheJsonPath(string body, string path)
    {
        var problem = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/ranking/predict", body);

        Assert.Equal(path, problem.GetProperty("field").GetString());
        Assert.Contains(path, Detail(problem), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongNumberOfFeaturesIs400NamingTheField()
    {
        var problem = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/ranking/predict", """{"instances":[{"user_id":"u0001","item_id":"i0001"},{"features":[1,2,3]}]}""");

        Assert.Equal("instances[1].features", problem.GetProperty("field").GetString());
        Assert.Contains("got 3", Detail(problem), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"abc\"", "the string")]
    [InlineData("\"NaN\"", "NaN and Infinity are not accepted")]
    [InlineData("\"Infinity\"", "NaN and Infinity are not accepted")]
    [InlineData("true", "a boolean")]
    [InlineData("null", "null")]
    [InlineData("1e39", "outside the float32 range")]
    public async Task NonFiniteOrWronglyTypedFeatureValuesAre400NamingTheField(string value, string reason)
    {
        var columns = ReferenceData.Load("ranking").Manifest.GetProperty("features").GetProperty("columns").EnumerateArray().Select(c => c.GetString()!).ToList();
        var values = string.Join(",", columns.Select((c, i) => i == 2 ? value : "0.5"));

        var problem = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/ranking/predict", $$"""{"features":[{{values}}]}""");

        Assert.Equal("features[2]", problem.GetProperty("field").GetString());
        Assert.Contains(reason, Detail(problem), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownAndMissingNamedFeaturesAre400()
    {
        var unknown = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/ranking/predict", """{"features":{"height_cm": 180}}""");
        var extraField = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/ranking/predict", """{"user_id":"u0001","item_id":"i0001","colour":"red"}""");

        Assert.Equal("features.height_cm", unknown.GetProperty("field").GetString());
        Assert.Equal("colour", extraField.GetProperty("field").GetString());
    }

    [Fact]
    public async Task UnknownEntityIs404NamingTheKey()
    {
        var problem = await ProblemAsync(HttpStatusCode.NotFound, "/v1/models/ranking/predict", """{"instances":[{"user_id":"u0001","item_id":"i0001"},{"user_id":"u9999999","item_id":"i0001"}]}""");

        Assert.Equal("instances[1].user_id", problem.GetProperty("field").GetString());
        Assert.Contains("'u9999999'", Detail(problem), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UndecodableImageIs400NamingTheField()
    {
        var garbage = Convert.ToBase64String(TestImages.Noise(500, seed: 3));
        var notBase64 = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/shapes/predict", """{"image":"@@@not base64@@@"}""");
        var notAnImage = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/shapes/predict", $$"""{"instances":[{"image":"{{garbage}}"}]}""");
        var truncated = ReferenceData.Load("shapes").Images[0][..400];
        var corrupt = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/shapes/predict", $$"""{"image":"{{truncated}}"}""");

        Assert.Equal("image", notBase64.GetProperty("field").GetString());
        Assert.Equal("instances[0].image", notAnImage.GetProperty("field").GetString());
        Assert.Contains("PNG", Detail(corrupt), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ImageLargerThanTheLimitIs400BeforeItIsDecoded()
    {
        var png = PngFixture.Write(300, 20, PngFixture.ColorTypeRgb, new byte[300 * 20 * 3]);
        var settings = new Dictionary<string, string?> { ["Serve:MaxImageSide"] = "256" };

        var problem = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/shapes/predict", $$"""{"image":"{{Convert.ToBase64String(png)}}"}""", settings);

        Assert.Equal("image", problem.GetProperty("field").GetString());
        Assert.Contains("300", Detail(problem), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BodyOverTheLimitIs413()
    {
        var settings = new Dictionary<string, string?> { ["Serve:MaxRequestBytes"] = "2048" };
        var body = JsonSerializer.Serialize(new { features = Enumerable.Repeat(0.5, 1000) });

        var problem = await ProblemAsync(HttpStatusCode.RequestEntityTooLarge, "/v1/models/ranking/predict", body, settings);

        Assert.Contains("2048", Detail(problem), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongContentTypeIs415()
    {
        var problem = await ProblemAsync(HttpStatusCode.UnsupportedMediaType, "/v1/models/ranking/predict", """{"user_id":"u0001","item_id":"i0001"}""", contentType: "text/plain");

        Assert.Equal("Content-Type", problem.GetProperty("field").GetString());
    }

    [Theory]
    [InlineData("/v1/models/ranking/predict", "application/json; charset=utf-16")]
    [InlineData("/v1/models/ranking/predict", "application/json;charset=\"ISO-8859-1\"")]
    [InlineData("/v2/models/ranking/infer", "application/json; charset=utf-16")]
    public async Task AJsonBodyDeclaredInAnotherCharsetIs415NamingIt(string url, string contentType)
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var content = new ByteArrayContent(System.Text.Encoding.Unicode.GetBytes("""{"user_id":"u0001","item_id":"i0001"}"""));
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);

        var response = await client.PostAsync(url, content);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        var problem = await response.JsonAsync();
        Assert.Equal("Content-Type", problem.GetProperty("field").GetString());
        Assert.Contains(contentType.Contains("utf-16", StringComparison.Ordinal) ? "'utf-16'" : "'ISO-8859-1'", Detail(problem), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AByteOrderMarkAndAnExplicitUtf8CharsetAreAccepted()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var expected = await (await client.PostRawAsync("/v1/models/ranking/predict", """{"user_id":"u0001","item_id":"i0001"}""")).JsonAsync();
        var content = new ByteArrayContent([0xEF, 0xBB, 0xBF, .. """{"user_id":"u0001","item_id":"i0001"}"""u8.ToArray()]);
        content.Headers.TryAddWithoutValidation("Content-Type", "application/json; charset=\"UTF-8\"");

        var response = await client.PostAsync("/v1/models/ranking/predict", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expected.GetProperty("heads").GetRawText(), (await response.JsonAsync()).GetProperty("heads").GetRawText());
    }

    [Theory]
    [InlineData("""[1, 2, 3]""", "$")]
    [InlineData("""{"instances": []}""", "instances")]
    [InlineData("""{"instances": {"user_id": "u0001"}}""", "instances")]
    [InlineData("""{"instances": [{"user_id":"u0001","item_id":"i0001"}], "user_id": "u1"}""", "user_id")]
    [InlineData("""{"heads": "click", "user_id":"u0001","item_id":"i0001"}""", "heads")]
    [InlineData("""{"user_id": {"id": 1}, "item_id":"i0001"}""", "user_id")]
    [InlineData("""{"item_id":"i0001"}""", "features")]
    public async Task MalformedEnvelopesAre400NamingTheField(string body, string field)
    {
        var problem = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/ranking/predict", body);

        Assert.Equal(field, problem.GetProperty("field").GetString());
    }

    [Fact]
    public async Task TooManyInstancesIs400()
    {
        var settings = new Dictionary<string, string?> { ["Serve:MaxInstances"] = "4" };
        var body = JsonSerializer.Serialize(new { instances = Enumerable.Repeat(new { user_id = "u0001", item_id = "i0001" }, 5) });

        var problem = await ProblemAsync(HttpStatusCode.BadRequest, "/v1/models/ranking/predict", body, settings);

        Assert.Contains("between 1 and 4", Detail(problem), StringComparison.Ordinal);
    }

    /// <summary>
    /// The API's routes have no representation but JSON: a client that accepts only something else still gets the whole
    /// problem, with traceId (and the protocol's error on /v2), where it got a bare body or text/plain.
    /// </summary>
    [Theory]
    [InlineData("text/html")]
    [InlineData("application/xml")]
    [InlineData("image/png")]
    public async Task AClientThatAcceptsNoJsonStillGetsTheWholeProblem(string accept)
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        client.DefaultRequestHeaders.Accept.ParseAdd(accept);

        var unknownEntity = await client.PostRawAsync("/v1/models/ranking/predict", """{"user_id":"u9999","item_id":"i0001"}""", "application/json");
        var notTensor = await client.PostRawAsync("/v2/models/ranking/infer", """{"inputs":[1]}""", "application/json");
        var noSuchMethod = await client.DeleteAsync("/v1/models");

        foreach (var (response, status) in new[] { (unknownEntity, 404), (notTensor, 400), (noSuchMethod, 405) })
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True((int)response.StatusCode == status, $"{response.RequestMessage!.RequestUri}: {(int)response.StatusCode} {text}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Matches("^[0-9a-f]{32}$", JsonDocument.Parse(text).RootElement.GetProperty("traceId").GetString());
        }

        Assert.Equal("user_id", (await unknownEntity.JsonAsync()).GetProperty("field").GetString());
        Assert.Contains("input tensor", (await notTensor.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    private static string Detail(JsonElement problem) => problem.GetProperty("detail").GetString()!;

    private static async Task<JsonElement> ProblemAsync(HttpStatusCode status, string url, string body,
        IDictionary<string, string?>? settings = null, string contentType = "application/json")
    {
        await using var app = new ServeFactory(settings);
        using var client = app.CreateClient();

        var response = await client.PostRawAsync(url, body, contentType);

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        return problem;
    }
}
