using System.Net;
using System.Text.Json;
using MultiHeadServe.Tests.Infrastructure;
using static MultiHeadServe.Tests.Infrastructure.OpenInferenceClients;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// Triton's binary tensor data extension on /v2 infer: tensors as raw little-endian bytes after the JSON, which
/// round-trip bit for bit, and every declared size checked against the body before anything is allocated.
/// </summary>
public sealed class BinaryTensorDataTests
{
    private static readonly float[] Input = [.. TensorTypesModel.Rows.SelectMany(r => r)];

    [Fact]
    public async Task Fp32Int64AndBoolOutputsRoundTripBitExactlyAndAgreeWithJsonData()
    {
        using var repository = TensorTypesModel.Create();
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();

        var binary = await client.PostAsync("/v2/models/tensors/infer", BinaryBody(new
        {
            id = "b-1",
            inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 3, 4 }, parameters = new { binary_data_size = Input.Length * 4 } } },
            parameters = new { binary_data_output = true },
        }, Bytes(Input)));
        var json = await client.PostJsonAsync("/v2/models/tensors/infer", new
        {
            inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 3, 4 }, data = Input } },
        });

        Assert.Equal(HttpStatusCode.OK, binary.StatusCode);
        Assert.Equal("application/octet-stream", binary.Content.Headers.ContentType?.MediaType);
        var (header, tensors) = await ReadBinaryAsync(binary);
        Assert.Equal("b-1", header.GetProperty("id").GetString());
        var outputs = header.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!);
        Assert.Equal(["score", "logits", "class_index", "positive"], outputs.Keys);
        Assert.Equal(["FP32", "FP32", "INT64", "BOOL"], outputs.Values.Select(o => o.GetProperty("datatype").GetString()));
        Assert.Equal([3.0, 3], outputs["logits"].GetProperty("shape").Numbers());
        Assert.Equal([3.0], outputs["class_index"].GetProperty("shape").Numbers());
        Assert.Equal([12, 36, 24, 9], tensors.Values.Select(t => t!.Length));

        var logits = Floats(tensors["logits"]);
        var indices = Longs(tensors["class_index"]);
        for (var r = 0; r < 3; r++)
        {
            var row = logits.AsSpan(r * 3, 3).ToArray();
            // 2^40 + arg-max: exact only if the value never went through a float.
            Assert.Equal(TensorTypesModel.IndexOffset + Array.IndexOf(row, row.Max()), indices[r]);
            Assert.Equal(row.Select(v => (byte)(v > 0 ? 1 : 0)), tensors["positive"]!.AsSpan(r * 3, 3).ToArray());
        }

        Assert.Contains(tensors["positive"]!, b => b == 0);
        Assert.Contains(tensors["positive"]!, b => b == 1);

        // The same request with JSON data: the same values, floats to the bit.
        Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        Assert.Equal("application/json", json.Content.Headers.ContentType?.MediaType);
        var data = (await json.JsonAsync()).GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!, o => o.GetProperty("data"));
        Assert.Equal(Bits(Floats(tensors["score"])), Bits(data["score"].EnumerateArray().Select(e => e.GetSingle())));
        Assert.Equal(Bits(logits), Bits(data["logits"].EnumerateArray().Select(e => e.GetSingle())));
        Assert.Equal(indices, data["class_index"].EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal(tensors["positive"]!.Select(b => b == 1), data["positive"].EnumerateArray().Select(e => e.GetBoolean()));
    }

    [Fact]
    public async Task ConcurrentRequestsBatchedTogetherEachGetTheirOwnRowsOfEveryType()
    {
        using var repository = TensorTypesModel.Create();
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();
        var rows = Enumerable.Range(0, 24).Select(i => new[] { i - 12f, (i % 5) - 2f, 0.5f * i, 3f - i }).ToList();

        var answers = await Task.WhenAll(rows.Select(async row =>
        {
            var response = await client.PostAsync("/v2/models/tensors/infer", BinaryBody(new
            {
                inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 1, 4 }, parameters = new { binary_data_size = 16 } } },
                parameters = new { binary_data_output = true },
            }, Bytes(row)));
            return (await ReadBinaryAsync(response)).Binary;
        }));

        for (var r = 0; r < rows.Count; r++)
        {
            var logits = Floats(answers[r]["logits"]);
            Assert.Equal(3, logits.Length);
            Assert.Equal(TensorTypesModel.IndexOffset + Array.IndexOf(logits, logits.Max()), Assert.Single(Longs(answers[r]["class_index"])));
            Assert.Equal(logits.Select(v => (byte)(v > 0 ? 1 : 0)), answers[r]["positive"]!);
            // score = row · w: each request's own row.
            var expected = (rows[r][0] * 0.5f) + (rows[r][1] * -0.25f) + (rows[r][2] * 0.125f) + (rows[r][3] * 1.5f);
            Assert.Equal(expected, Assert.Single(Floats(answers[r]["score"])), 1e-4);
        }
    }

    [Fact]
    public async Task EachOutputIsBinaryOrJsonAsAskedAndTheImageModelTakesBinaryInput()
    {
        var reference = ReferenceData.Load("shapes");
        var image = ReferencePixels(2);
        int[] shape = [2, 3, 64, 64];
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var response = await client.PostAsync("/v2/models/shapes/infer", BinaryBody(new
        {
            inputs = new[] { new { name = "image", datatype = "FP32", shape, parameters = new { binary_data_size = image.Length * 4 } } },
            outputs = new object[] { new { name = "bbox" }, new { name = "class_logits", parameters = new { binary_data = true } } },
        }, Bytes(image)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var (header, tensors) = await ReadBinaryAsync(response);
        Assert.Null(tensors["bbox"]);
        var logits = Floats(tensors["class_logits"]);
        var expected = reference.OutputRow("class_logits", 0).Concat(reference.OutputRow("class_logits", 1)).ToArray();
        Assert.Equal(expected.Length, logits.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], logits[i], 1e-3);
        }

        var bbox = header.GetProperty("outputs")[0];
        Assert.Equal("bbox", bbox.GetProperty("name").GetString());
        Assert.Equal(2 * reference.OutputRow("bbox", 0).Length, bbox.GetProperty("data").GetArrayLength());
    }

    /// <summary>The first reference images as the model's input: RGB bytes scaled to [0, 1], normalised by mean and std 0.5, NCHW.</summary>
    internal static float[] ReferencePixels(int count)
    {
        var pixels = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Model("shapes"), "1", "reference.json"))).RootElement.GetProperty("pixels").GetProperty("data");
        var tensor = new float[count * 3 * 64 * 64];
        for (var n = 0; n < count; n++)
        {
            var rgb = Convert.FromBase64String(pixels[n].GetString()!);
            for (var i = 0; i < 64 * 64; i++)
            {
                for (var c = 0; c < 3; c++)
                {
                    tensor[(n * 3 * 64 * 64) + (c * 64 * 64) + i] = ((rgb[(i * 3) + c] * 0.00392156862745098f) - 0.5f) / 0.5f;
                }
            }
        }

        return tensor;
    }

    public static TheoryData<string, object, int, string> BadBinaryRequests => new()
    {
        // A size that disagrees with the shape (3 × 4 floats are 48 bytes).
        { "size and shape", new { inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 3, 4 }, parameters = new { binary_data_size = 44 } } } }, 44, "inputs[0].parameters.binary_data_size" },
        // A size larger than what follows the JSON.
        { "size and body", new { inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 3, 4 }, parameters = new { binary_data_size = 4800 } } } }, 48, "inputs[0].parameters.binary_data_size" },
        // Half floats for a float32 input: the protocol converts no datatype.
        { "FP16", new { inputs = new[] { new { name = "features", datatype = "FP16", shape = new[] { 3, 4 }, parameters = new { binary_data_size = 24 } } } }, 24, "inputs[0].datatype" },
        // FP64 bytes are not FP32 bytes either (JSON numbers may be declared FP64; binary data may not).
        { "FP64", new { inputs = new[] { new { name = "features", datatype = "FP64", shape = new[] { 3, 4 }, parameters = new { binary_data_size = 96 } } } }, 96, "inputs[0].datatype" },
        // Bytes after the JSON that no input declares.
        { "undeclared bytes", new { inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 1, 4 }, data = new[] { 1f, 2, 3, 4 } } } }, 16, "Inference-Header-Content-Length" },
        // A size that is not a number of bytes.
        { "size type", new { inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 3, 4 }, parameters = new { binary_data_size = "48" } } } }, 48, "inputs[0].parameters.binary_data_size" },
        // binary_data must be a boolean.
        { "binary_data type", new { inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 3, 4 }, parameters = new { binary_data_size = 48 } } }, outputs = new[] { new { name = "score", parameters = new { binary_data = "yes" } } } }, 48, "outputs[0].parameters.binary_data" },
    };

    [Theory]
    [MemberData(nameof(BadBinaryRequests))]
    public async Task ABinaryRequestThatDisagreesWithItselfIs400WithTheProtocolsError(string mistake, object header, int bytes, string field)
    {
        using var repository = TensorTypesModel.Create();
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();

        var response = await client.PostAsync("/v2/models/tensors/infer", BinaryBody(header, new byte[bytes]));

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{mistake}: {response.StatusCode}");
        var error = await response.JsonAsync();
        Assert.Equal(field, error.GetProperty("field").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("error").GetString()));
    }

    [Fact]
    public async Task DeclaredSizesAreCheckedBeforeAnythingIsAllocatedAndTheLimitsAreV1s()
    {
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Serve:MaxInstances"] = "64", ["Serve:MaxRequestBytes"] = "100000" });
        using var client = app.CreateClient();
        var before = GC.GetTotalAllocatedBytes(precise: true);

        // 100,000 images of 3×64×64 declared over 8 bytes: 4.9 GB if it were believed.
        var huge = await client.PostAsync("/v2/models/shapes/infer", BinaryBody(new
        {
            inputs = new[] { new { name = "image", datatype = "FP32", shape = new[] { 100_000, 3, 64, 64 }, parameters = new { binary_data_size = 4_915_200_000 } } },
        }, new byte[8]));
        var oneImageShort = await client.PostAsync("/v2/models/shapes/infer", BinaryBody(new
        {
            inputs = new[] { new { name = "image", datatype = "FP32", shape = new[] { 1, 3, 64, 64 }, parameters = new { binary_data_size = 49_152 } } },
        }, new byte[8]));
        var headerPastTheBody = new ByteArrayContent("{}"u8.ToArray());
        headerPastTheBody.Headers.Add("Inference-Header-Content-Length", "1000000");
        var badHeader = await client.PostAsync("/v2/models/shapes/infer", headerPastTheBody);
        var tooLarge = await client.PostAsync("/v2/models/shapes/infer", BinaryBody(new
        {
            inputs = new[] { new { name = "image", datatype = "FP32", shape = new[] { 1, 3, 64, 64 }, parameters = new { binary_data_size = 49_152 } } },
        }, new byte[200_000]));
        var tooLargeOnV1 = await client.PostAsync("/v1/models/shapes/predict", new ByteArrayContent(new byte[200_000]) { Headers = { ContentType = new("application/json") } });
        // Without the extension's header the body must be JSON, as on /v1.
        var notJson = await client.PostAsync("/v2/models/shapes/infer", new ByteArrayContent(new byte[8]) { Headers = { ContentType = new("text/plain") } });
        var notJsonOnV1 = await client.PostAsync("/v1/models/ranking/predict", new ByteArrayContent(new byte[8]) { Headers = { ContentType = new("text/plain") } });
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(HttpStatusCode.BadRequest, huge.StatusCode);
        Assert.Contains("Serve:MaxInstances", (await huge.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, oneImageShort.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badHeader.StatusCode);
        Assert.Equal("Inference-Header-Content-Length", (await badHeader.JsonAsync()).GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Equal(tooLargeOnV1.StatusCode, tooLarge.StatusCode);
        Assert.False(string.IsNullOrEmpty((await tooLarge.JsonAsync()).GetProperty("error").GetString()));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, notJson.StatusCode);
        Assert.Equal(notJsonOnV1.StatusCode, notJson.StatusCode);
        Assert.False(string.IsNullOrEmpty((await notJson.JsonAsync()).GetProperty("error").GetString()));
        Assert.True(allocated < 256L * 1024 * 1024, $"{allocated / 1024 / 1024} MB allocated while refusing them.");
    }

    [Fact]
    public async Task NaNInBinaryDataIs400AsInJson()
    {
        using var repository = TensorTypesModel.Create();
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();

        var response = await client.PostAsync("/v2/models/tensors/infer", BinaryBody(new
        {
            inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 1, 4 }, parameters = new { binary_data_size = 16 } } },
        }, Bytes([1f, float.NaN, 3f, 4f])));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("inputs[0].binary_data[1]", (await response.JsonAsync()).GetProperty("field").GetString());
    }
}
