using System.Net;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Api;

/// <summary>KServe v2 clients: tensors in, tensors out, same engine and batcher as /v1.</summary>
public sealed class OpenInferenceApiTests
{
    [Fact]
    public async Task ServerAndModelMetadataDescribeTheTensors()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var server = await (await client.GetAsync("/v2")).JsonAsync();
        var live = await client.GetAsync("/v2/health/live");
        var ready = await client.GetAsync("/v2/health/ready");
        var model = await (await client.GetAsync("/v2/models/shapes")).JsonAsync();
        var modelReady = await (await client.GetAsync("/v2/models/shapes/ready")).JsonAsync();

        Assert.Equal("multiheadserve", server.GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("onnxruntime_onnx", model.GetProperty("platform").GetString());
        Assert.Equal("FP32", model.GetProperty("inputs")[0].GetProperty("datatype").GetString());
        Assert.Equal([-1, 3, 64, 64], model.GetProperty("inputs")[0].GetProperty("shape").Numbers());
        Assert.True(modelReady.GetProperty("ready").GetBoolean());
    }

    [Fact]
    public async Task InferReturnsTheReferenceOutputsAsTensors()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var (shape, data) = reference.Input("features");

        var response = await client.PostJsonAsync("/v2/models/ranking/infer", new
        {
            id = "req-1",
            inputs = new[] { new { name = "features", shape, datatype = "FP32", data } },
            outputs = new[] { new { name = "revenue" }, new { name = "click_logit" } },
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.JsonAsync();
        Assert.Equal("ranking", body.GetProperty("model_name").GetString());
        Assert.Equal("req-1", body.GetProperty("id").GetString());
        var outputs = body.GetProperty("outputs").EnumerateArray().ToList();
        Assert.Equal(["revenue", "click_logit"], outputs.Select(o => o.GetProperty("name").GetString()));
        foreach (var output in outputs)
        {
            var (expectedShape, expected) = reference.Output(output.GetProperty("name").GetString()!);
            Assert.Equal(expectedShape.Select(d => (double)d), output.GetProperty("shape").Numbers());
            var actual = output.GetProperty("data").Numbers();
            for (var i = 0; i < expected.Length; i++)
            {
                Assert.InRange(actual[i], expected[i] - (1e-4 * Math.Max(1, Math.Abs(expected[i]))), expected[i] + (1e-4 * Math.Max(1, Math.Abs(expected[i]))));
            }
        }
    }

    [Fact]
    public async Task NestedDataIsAcceptedRowMajor()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var rows = Enumerable.Range(0, 2).Select(r => reference.InputRow("features", r)).ToArray();

        var body = await (await client.PostJsonAsync("/v2/models/ranking/infer", new
        {
            inputs = new[] { new { name = "features", shape = new[] { 2, rows[0].Length }, datatype = "FP32", data = rows } },
        })).JsonAsync();

        var click = body.GetProperty("outputs").EnumerateArray().First(o => o.GetProperty("name").GetString() == "click_logit").GetProperty("data").Numbers();
        Assert.InRange(click[1], reference.OutputRow("click_logit", 1)[0] - 1e-4, reference.OutputRow("click_logit", 1)[0] + 1e-4);
    }

    [Theory]
    [InlineData("""{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""", "inputs[0].shape")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""", "inputs[0].name")]
    [InlineData("""{"inputs":[{"name":"features","shape":[1,-12],"datatype":"FP32","data":[1,2]}]}""", "inputs[0].shape[1]")]
    [InlineData("""{"inputs":[{"name":"features","datatype":"FP32","data":[1,2]}]}""", "inputs[0].shape")]
    [InlineData("""{"inputs":[{"name":"features","shape":[1,"12"],"datatype":"FP32","data":[1,2]}]}""", "inputs[0].shape[1]")]
    [InlineData("""{"inputs":[{"name":"features","shape":[1,1.5],"datatype":"FP32","data":[1,2]}]}""", "inputs[0].shape[1]")]
    [InlineData("""{"inputs":[{"name":"features","shape":"1,12","datatype":"FP32","data":[1,2]}]}""", "inputs[0].shape")]
    [InlineData("""{"inputs":[{"name":"features","shape":[1,2],"datatype":"BYTES","data":[1,2]}]}""", "inputs[0].datatype")]
    [InlineData("""{"outputs":[]}""", "inputs")]
    public async Task BadTensorsAre400WithTheProtocolsErrorMember(string body, string field)
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var response = await client.PostRawAsync("/v2/models/ranking/infer", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.JsonAsync();
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("error").GetString()));
    }

    [Fact]
    public async Task AWrongCountOfValuesOrANonNumberIs400()
    {
        var columns = ReferenceData.Load("ranking").Input("features").Shape[1];
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var tooFew = await client.PostJsonAsync("/v2/models/ranking/infer", new { inputs = new[] { new { name = "features", shape = new[] { 2, columns }, datatype = "FP32", data = new float[columns] } } });
        var notNumber = await client.PostRawAsync("/v2/models/ranking/infer", $$"""{"inputs":[{"name":"features","shape":[1,{{columns}}],"datatype":"FP32","data":["NaN"{{string.Concat(Enumerable.Repeat(",1", columns - 1))}}]}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, tooFew.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, notNumber.StatusCode);
        Assert.Equal("inputs[0].data[0]", (await notNumber.JsonAsync()).GetProperty("field").GetString());
    }

    [Fact]
    public async Task DeclaredSizesAreCheckedBeforeAnythingIsAllocated()
    {
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Serve:MaxInstances"] = "64" });
        using var client = app.CreateClient();
        var before = GC.GetTotalAllocatedBytes(precise: true);

        // 83 bytes declaring 100,000 images of 3x64x64: 4.9 GB if it were believed.
        var huge = await client.PostRawAsync("/v2/models/shapes/infer",
            """{"inputs":[{"name":"image","datatype":"FP32","shape":[100000,3,64,64],"data":[0]}]}""");
        var manyRows = await client.PostRawAsync("/v2/models/shapes/infer",
            """{"inputs":[{"name":"image","datatype":"FP32","shape":[65,3,64,64],"data":[0]}]}""");
        var overTheBody = await client.PostRawAsync("/v2/models/shapes/infer",
            """{"inputs":[{"name":"image","datatype":"FP32","shape":[2,3,64,64],"data":[0]}]}""");
        var notAnObject = await client.PostRawAsync("/v2/models/ranking/infer", """{"inputs":[1]}""");
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        foreach (var response in new[] { huge, manyRows, overTheBody, notAnObject })
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.False(string.IsNullOrEmpty((await response.JsonAsync()).GetProperty("error").GetString()));
        }

        Assert.Contains("Serve:MaxInstances", (await huge.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains("holds at most", (await overTheBody.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
        // Far from the 4.9 GB the first request would have cost (the count is the whole process's, other tests included).
        Assert.True(allocated < 1024L * 1024 * 1024, $"{allocated / 1024 / 1024} MB allocated while refusing them.");
    }

    [Fact]
    public async Task UnknownModelOrVersionIs404()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        var unknownModel = await client.GetAsync("/v2/models/nope");
        var unknownVersion = await client.PostRawAsync("/v2/models/ranking/versions/7/infer", "{}");

        Assert.Equal(HttpStatusCode.NotFound, unknownModel.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknownVersion.StatusCode);
    }
}
