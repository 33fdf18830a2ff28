using System.Net;
using System.Text.Json;
using Google.Protobuf;
using MultiHeadServe.Api.Grpc;
using MultiHeadServe.Tests.Api;
using MultiHeadServe.Tests.Infrastructure;
using static MultiHeadServe.Tests.Infrastructure.OpenInferenceClients;

namespace MultiHeadServe.Tests.Inference;

/// <summary>
/// The same input gives the same bits, run after run and wire after wire. ONNX Runtime's CPU convolutions can round
/// differently in the last bit when the input sits at another alignment in memory, and every request's tensor is
/// somewhere else: before the engine gave inputs an aligned home, the same images gave two answers in alternate requests.
/// </summary>
public sealed class DeterminismTests
{
    [Fact]
    public async Task TheSameImagesGiveBitIdenticalOutputsInEveryRequestAndOnEveryWire()
    {
        int[] shape = [2, 3, 64, 64];
        var data = BinaryTensorDataTests.ReferencePixels(2);
        await using var app = new ServeFactory();
        using var http = app.CreateClient();
        using var channel = Channel(app);
        var grpc = Client(channel);
        var body = new { inputs = new[] { new { name = "image", datatype = "FP32", shape, data } }, outputs = new[] { new { name = "class_logits" }, new { name = "bbox" } } };

        var answers = new List<int[]>();
        for (var i = 0; i < 12; i++)
        {
            var response = await http.PostJsonAsync("/v2/models/shapes/infer", body);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var outputs = (await response.JsonAsync()).GetProperty("outputs");
            answers.Add(Bits(outputs.EnumerateArray().SelectMany(o => o.GetProperty("data").EnumerateArray().Select(v => v.GetSingle()))));
        }

        var raw = await grpc.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "shapes",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "image", Datatype = "FP32", Shape = { shape.Select(d => (long)d) } } },
            Outputs = { new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "class_logits" }, new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "bbox" } },
            RawInputContents = { ByteString.CopyFrom(Bytes(data)) },
        });

        Assert.All(answers, answer => Assert.Equal(answers[0], answer));
        Assert.Equal(answers[0], Bits(raw.RawOutputContents.SelectMany(o => Floats(o.Span))));

        // /v1 from the PNG itself: the decoded heads are the same text every time.
        var png = await File.ReadAllBytesAsync(Path.Combine(RepositoryPaths.Model("shapes"), "samples", "triangle.png"));
        var heads = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 12; i++)
        {
            using var content = new ByteArrayContent(png);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("image/png");
            heads.Add((await (await http.PostAsync("/v1/models/shapes/predict", content)).JsonAsync()).GetProperty("heads").GetRawText());
        }

        Assert.Single(heads);
    }
}
