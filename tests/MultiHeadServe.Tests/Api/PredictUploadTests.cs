using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using MultiHeadServe.Tests.Features.Images;
using MultiHeadServe.Tests.Infrastructure;
using SkiaSharp;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// Image models take the image itself (image/png, image/jpeg, image/webp) or a multipart form of files, besides
/// base64 JSON, and answer with the same heads; every mistake in an upload is a 4xx problem naming what was wrong.
/// </summary>
public sealed class PredictUploadTests
{
    private static readonly string Samples = Path.Combine(RepositoryPaths.Model("shapes"), "samples");

    // The same pixels give the same heads; the engine's floats may differ in the last place from run to run (the
    // kernels ONNX Runtime picks depend on the batch and the memory it is given), so numbers compare within 1e-6.
    [Fact]
    public async Task ARawPngBodyReturnsTheSameHeadsAsTheBase64JsonForm()
    {
        var png = await File.ReadAllBytesAsync(Path.Combine(Samples, "triangle.png"));
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var json = await OkJsonAsync(await client.PostJsonAsync("/v1/models/shapes/predict", new { image = Convert.ToBase64String(png) }));
        var raw = await OkJsonAsync(await client.PostAsync("/v1/models/shapes/predict", Raw(png, "image/png")));

        Assert.Equal("triangle", raw.GetProperty("heads").GetProperty("class").GetProperty("label").GetString());
        JsonAssert.SameNumbers(json.GetProperty("heads"), raw.GetProperty("heads"), 1e-6);
        Assert.False(raw.TryGetProperty("predictions", out _));
    }

    [Fact]
    public async Task AMultipartOfTwoFilesReturnsTheSameHeadsAsInstancesInRequestOrder()
    {
        var triangle = await File.ReadAllBytesAsync(Path.Combine(Samples, "triangle.png"));
        var circle = await File.ReadAllBytesAsync(Path.Combine(Samples, "circle.png"));
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var json = await OkJsonAsync(await client.PostJsonAsync("/v1/models/shapes/predict",
            new { instances = new[] { new { image = Convert.ToBase64String(triangle) }, new { image = Convert.ToBase64String(circle) } } }));
        using var form = Form(("image", "triangle.png", triangle, "image/png"), ("image", "circle.png", circle, "image/png"));
        var multipart = await OkJsonAsync(await client.PostAsync("/v1/models/shapes/predict", form));

        var predictions = multipart.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(["triangle", "circle"], predictions.Select(p => p.GetProperty("heads").GetProperty("class").GetProperty("label").GetString()));
        JsonAssert.SameNumbers(json.GetProperty("predictions"), multipart.GetProperty("predictions"), 1e-6);
    }

    [Fact]
    public async Task UploadsWorkOnThePerHeadRouteAndWithAHeadsQuery()
    {
        var triangle = await File.ReadAllBytesAsync(Path.Combine(Samples, "triangle.png"));
        var circle = await File.ReadAllBytesAsync(Path.Combine(Samples, "circle.png"));
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var json = await OkJsonAsync(await client.PostJsonAsync("/v1/models/shapes/heads/bbox/predict", new { image = Convert.ToBase64String(circle) }));
        var raw = await OkJsonAsync(await client.PostAsync("/v1/models/shapes/heads/bbox/predict", Raw(circle, "image/png")));
        using var form = Form(("image", "triangle.png", triangle, "image/png"), ("image", "circle.png", circle, "application/octet-stream"));
        var subset = await OkJsonAsync(await client.PostAsync("/v1/models/shapes/predict?heads=class", form));

        JsonAssert.SameNumbers(json.GetProperty("prediction"), raw.GetProperty("prediction"), 1e-6);
        Assert.All(subset.GetProperty("predictions").EnumerateArray(), p => Assert.Equal(["class"], p.GetProperty("heads").EnumerateObject().Select(h => h.Name)));
    }

    [Fact]
    public async Task JpegAndWebpUploadsAreDecodedLikeThePng()
    {
        var reference = ReferenceData.Load("shapes");
        var pixels = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(RepositoryPaths.Model("shapes"), "1", "reference.json")))
            .RootElement.GetProperty("pixels").GetProperty("data")[1].GetString()!;
        var rgb = Convert.FromBase64String(pixels);
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var png = await OkJsonAsync(await client.PostJsonAsync("/v1/models/shapes/predict", new { image = reference.Images[1] }));
        var webp = await OkJsonAsync(await client.PostAsync("/v1/models/shapes/predict", Raw(SkiaFixture.Webp(64, 64, rgb, 3, lossless: true), "image/webp")));
        var jpeg = await OkJsonAsync(await client.PostAsync("/v1/models/shapes/predict",
            Raw(SkiaFixture.Jpeg(64, 64, rgb, SKJpegEncoderDownsample.Downsample444, quality: 95), "image/jpeg")));

        // Lossless WebP holds the same pixels, so the same heads; JPEG is close enough to keep the class.
        JsonAssert.SameNumbers(png.GetProperty("heads"), webp.GetProperty("heads"), 1e-6);
        Assert.Equal("triangle", jpeg.GetProperty("heads").GetProperty("class").GetProperty("label").GetString());
    }

    [Fact]
    public async Task UploadsToTabularModelsOrToEvaluateAndUnacceptedImageTypesAre415()
    {
        var png = await File.ReadAllBytesAsync(Path.Combine(Samples, "triangle.png"));
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var tabular = await ProblemAsync(client, "/v1/models/ranking/predict", Raw(png, "image/png"), HttpStatusCode.UnsupportedMediaType);
        using var form = Form(("image", "triangle.png", png, "image/png"));
        var tabularForm = await ProblemAsync(client, "/v1/models/ranking/predict", form, HttpStatusCode.UnsupportedMediaType);
        var evaluate = await ProblemAsync(client, "/v1/models/shapes/evaluate", Raw(png, "image/png"), HttpStatusCode.UnsupportedMediaType);
        var gif = await ProblemAsync(client, "/v1/models/shapes/predict", Raw("GIF89a"u8.ToArray(), "image/gif"), HttpStatusCode.UnsupportedMediaType);
        var text = await ProblemAsync(client, "/v1/models/shapes/predict", Raw("hello"u8.ToArray(), "text/plain"), HttpStatusCode.UnsupportedMediaType);

        Assert.All([tabular, tabularForm, evaluate, gif, text], problem => Assert.Equal("Content-Type", problem.GetProperty("field").GetString()));
        Assert.Contains("image uploads are for image models", Detail(tabular), StringComparison.Ordinal);
        Assert.Contains("application/json only", Detail(evaluate), StringComparison.Ordinal);
        Assert.Contains("image/gif is not accepted", Detail(gif), StringComparison.Ordinal);
        Assert.Contains("image/png, image/jpeg, image/webp or multipart/form-data", Detail(text), StringComparison.Ordinal);
    }

    [Fact]
    public async Task EmptyNonImageAndNonFileUploadsAre400NamingThePart()
    {
        var png = await File.ReadAllBytesAsync(Path.Combine(Samples, "triangle.png"));
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var emptyBody = await ProblemAsync(client, "/v1/models/shapes/predict", Raw([], "image/png"), HttpStatusCode.BadRequest);
        var base64Body = await ProblemAsync(client, "/v1/models/shapes/predict", Raw(System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(png)), "image/png"), HttpStatusCode.BadRequest);
        using var textPart = Form(("image", "triangle.png", png, "image/png"), ("image", "notes.txt", "not an image"u8.ToArray(), "text/plain"));
        var notAnImage = await ProblemAsync(client, "/v1/models/shapes/predict", textPart, HttpStatusCode.BadRequest);
        using var emptyPart = Form(("image", "empty.png", [], "image/png"));
        var emptyFile = await ProblemAsync(client, "/v1/models/shapes/predict", emptyPart, HttpStatusCode.BadRequest);
        using var fieldPart = new MultipartFormDataContent { { new StringContent("class"), "heads" } };
        var notAFile = await ProblemAsync(client, "/v1/models/shapes/predict", fieldPart, HttpStatusCode.BadRequest);
        using var noBoundary = Raw(png, "multipart/form-data");
        var withoutBoundary = await ProblemAsync(client, "/v1/models/shapes/predict", noBoundary, HttpStatusCode.BadRequest);
        using var noFiles = Raw("--b--\r\n"u8.ToArray(), "multipart/form-data; boundary=b");
        var emptyForm = await ProblemAsync(client, "/v1/models/shapes/predict", noFiles, HttpStatusCode.BadRequest);

        Assert.Equal("body", emptyBody.GetProperty("field").GetString());
        Assert.Contains("image is empty", Detail(emptyBody), StringComparison.Ordinal);
        Assert.Contains("upload the file itself", Detail(base64Body), StringComparison.Ordinal);
        Assert.Equal("image[1]", notAnImage.GetProperty("field").GetString());
        Assert.Contains("unsupported image format", Detail(notAnImage), StringComparison.Ordinal);
        Assert.Equal("image[0]", emptyFile.GetProperty("field").GetString());
        Assert.Contains("'empty.png' is empty", Detail(emptyFile), StringComparison.Ordinal);
        Assert.Equal("heads[0]", notAFile.GetProperty("field").GetString());
        Assert.Contains("?heads=", Detail(notAFile), StringComparison.Ordinal);
        Assert.Equal("Content-Type", withoutBoundary.GetProperty("field").GetString());
        Assert.Equal("image", emptyForm.GetProperty("field").GetString());
    }

    [Fact]
    public async Task UploadsKeepTheRequestSizeAndInstanceLimits()
    {
        var png = await File.ReadAllBytesAsync(Path.Combine(Samples, "triangle.png"));
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Serve:MaxInstances"] = "2", ["Serve:MaxRequestBytes"] = "32768" });
        using var client = app.CreateClient();

        using var threeFiles = Form(("image", "a.png", png, "image/png"), ("image", "b.png", png, "image/png"), ("image", "c.png", png, "image/png"));
        var tooMany = await ProblemAsync(client, "/v1/models/shapes/predict", threeFiles, HttpStatusCode.BadRequest);
        var tooLarge = await ProblemAsync(client, "/v1/models/shapes/predict", Raw(new byte[40_000], "image/png"), HttpStatusCode.RequestEntityTooLarge);

        Assert.Equal("image[2]", tooMany.GetProperty("field").GetString());
        Assert.Contains("between 1 and 2 images", Detail(tooMany), StringComparison.Ordinal);
        Assert.Contains("32768", Detail(tooLarge), StringComparison.Ordinal);
    }

    private static ByteArrayContent Raw(byte[] body, string contentType)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return content;
    }

    private static MultipartFormDataContent Form(params (string Name, string FileName, byte[] Data, string ContentType)[] files)
    {
        var form = new MultipartFormDataContent();
        foreach (var (name, fileName, data, contentType) in files)
        {
            form.Add(Raw(data, contentType), name, fileName);
        }

        return form;
    }

    private static async Task<JsonElement> OkJsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement;
    }

    private static async Task<JsonElement> ProblemAsync(HttpClient client, string url, HttpContent content, HttpStatusCode status)
    {
        var response = await client.PostAsync(url, content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(text).RootElement;
    }

    private static string Detail(JsonElement problem) => problem.GetProperty("detail").GetString()!;
}
