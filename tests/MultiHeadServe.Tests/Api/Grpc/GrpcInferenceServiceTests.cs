using Google.Protobuf;
using Grpc.Core;
using Grpc.Reflection.V1Alpha;
using MultiHeadServe.Api.Grpc;
using MultiHeadServe.Models;
using MultiHeadServe.Tests.Infrastructure;
using static MultiHeadServe.Tests.Infrastructure.OpenInferenceClients;

namespace MultiHeadServe.Tests.Api.Grpc;

/// <summary>
/// The Open Inference Protocol's gRPC service, called by a client generated from the same .proto as Triton's and
/// KServe's users generate theirs: every RPC, raw and typed contents, head selection, and errors as status codes.
/// </summary>
public sealed class GrpcInferenceServiceTests
{
    [Fact]
    public async Task EveryMetadataAndReadinessRpcAnswersAsRestDoes()
    {
        await using var app = new ServeFactory();
        using var channel = Channel(app);
        var client = Client(channel);
        using var http = app.CreateClient();

        var live = await client.ServerLiveAsync(new ServerLiveRequest());
        var ready = await client.ServerReadyAsync(new ServerReadyRequest());
        var server = await client.ServerMetadataAsync(new ServerMetadataRequest());
        var model = await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "shapes" });
        var versioned = await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "shapes", Version = "1" });
        var modelReady = await client.ModelReadyAsync(new ModelReadyRequest { Name = "shapes" });
        var rest = await (await http.GetAsync("/v2/models/shapes")).JsonAsync();

        Assert.True(live.Live);
        Assert.True(ready.Ready);
        Assert.Equal("multiheadserve", server.Name);
        Assert.Contains("binary_tensor_data", server.Extensions);
        Assert.Equal("shapes", model.Name);
        Assert.Equal(["1"], model.Versions);
        Assert.Equal("onnxruntime_onnx", model.Platform);
        Assert.Equal("image", model.Inputs.Single().Name);
        Assert.Equal("FP32", model.Inputs.Single().Datatype);
        Assert.Equal([-1L, 3, 64, 64], model.Inputs.Single().Shape);
        Assert.Equal(rest.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()), model.Outputs.Select(o => o.Name));
        Assert.Equal(model, versioned);
        Assert.True(modelReady.Ready);
    }

    [Fact]
    public async Task RawContentsGetEveryHeadAsRawOutputsAndTypedContentsTypedOnes()
    {
        var reference = ReferenceData.Load("ranking");
        var (shape, data) = reference.Input("features");
        await using var app = new ServeFactory();
        using var channel = Channel(app);
        var client = Client(channel);

        var raw = await client.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "ranking",
            Id = "g-1",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { shape.Select(d => (long)d) } } },
            RawInputContents = { ByteString.CopyFrom(Bytes(data)) },
        });
        var typed = await client.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "ranking",
            Inputs =
            {
                new ModelInferRequest.Types.InferInputTensor
                {
                    Name = "features", Datatype = "FP32", Shape = { shape.Select(d => (long)d) }, Contents = new InferTensorContents { Fp32Contents = { data } },
                },
            },
        });

        Assert.Equal("ranking", raw.ModelName);
        Assert.Equal("1", raw.ModelVersion);
        Assert.Equal("g-1", raw.Id);
        Assert.Equal(["click_logit", "dwell", "revenue"], raw.Outputs.Select(o => o.Name).Order(StringComparer.Ordinal));
        Assert.Equal(raw.Outputs.Count, raw.RawOutputContents.Count);
        Assert.Empty(typed.RawOutputContents);
        for (var o = 0; o < raw.Outputs.Count; o++)
        {
            var output = raw.Outputs[o];
            var (expectedShape, expected) = reference.Output(output.Name);
            Assert.Equal("FP32", output.Datatype);
            Assert.Equal(expectedShape.Select(d => (long)d), output.Shape);
            Assert.Null(output.Contents);
            var values = Floats(raw.RawOutputContents[o].Span);
            for (var i = 0; i < expected.Length; i++)
            {
                Assert.Equal(expected[i], values[i], 1e-4 * Math.Max(1, Math.Abs(expected[i])));
            }

            // The same run's values, typed: identical to the bit.
            Assert.Equal(Bits(values), Bits(typed.Outputs[o].Contents.Fp32Contents));
        }
    }

    [Fact]
    public async Task OutputsPickHeadsAndASubsetRunsThePrunedGraph()
    {
        var reference = ReferenceData.Load("ranking");
        var (shape, data) = reference.Input("features");
        await using var app = new ServeFactory();
        using var channel = Channel(app);
        var client = Client(channel);

        var response = await client.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "ranking",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { shape.Select(d => (long)d) } } },
            Outputs = { new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "revenue" } },
            RawInputContents = { ByteString.CopyFrom(Bytes(data)) },
        });

        Assert.Equal(["revenue"], response.Outputs.Select(o => o.Name));
        var (_, expected) = reference.Output("revenue");
        var values = Floats(response.RawOutputContents[0].Span);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], values[i], 1e-4 * Math.Max(1, Math.Abs(expected[i])));
        }

        app.Service<ModelRegistry>().TryGet("ranking", out var ranking);
        Assert.Equal(1, ranking.Sessions.PrunedCount);
    }

    [Fact]
    public async Task MistakesAreStatusCodesWithTheRestMessageAndTheField()
    {
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Serve:MaxInstances"] = "4", ["Serve:MaxRequestBytes"] = "4096" });
        using var channel = Channel(app);
        var client = Client(channel);
        var row = new float[12];

        ModelInferRequest Request(string datatype, long[] shape, Action<ModelInferRequest>? edit = null)
        {
            var request = new ModelInferRequest
            {
                ModelName = "ranking",
                Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = datatype, Shape = { shape } } },
                RawInputContents = { ByteString.CopyFrom(Bytes(row)) },
            };
            edit?.Invoke(request);
            return request;
        }

        async Task<RpcException> Fails(ModelInferRequest request) => await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(request).ResponseAsync);

        var unknownModel = await Fails(Request("FP32", [1, 12], r => r.ModelName = "nope"));
        var unknownVersion = await Fails(Request("FP32", [1, 12], r => r.ModelVersion = "7"));
        var wrongDatatype = await Fails(Request("INT64", [1, 12]));
        var half = await Fails(Request("FP16", [1, 12]));
        var shapeAndRaw = await Fails(Request("FP32", [2, 12]));
        var shapeAndTyped = await Fails(Request("FP32", [1, 12], r =>
        {
            r.RawInputContents.Clear();
            r.Inputs[0].Contents = new InferTensorContents { Fp32Contents = { new float[11] } };
        }));
        var typedOfAnotherType = await Fails(Request("FP32", [1, 12], r =>
        {
            r.RawInputContents.Clear();
            r.Inputs[0].Contents = new InferTensorContents { Int64Contents = { new long[12] } };
        }));
        var wrongShape = await Fails(Request("FP32", [1, 11]));
        var tooManyRows = await Fails(Request("FP32", [5, 12]));
        var unknownOutput = await Fails(Request("FP32", [1, 12], r => r.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "nope" })));
        var noInput = await Fails(Request("FP32", [1, 12], r => { r.Inputs.Clear(); r.RawInputContents.Clear(); }));
        var nan = await Fails(Request("FP32", [1, 12], r => r.RawInputContents[0] = ByteString.CopyFrom(Bytes([float.NaN, .. new float[11]]))));
        var tooLarge = await Fails(Request("FP32", [1, 12], r => r.RawInputContents[0] = ByteString.CopyFrom(new byte[8192])));
        var unknownMetadata = await Assert.ThrowsAsync<RpcException>(() => client.ModelMetadataAsync(new ModelMetadataRequest { Name = "nope" }).ResponseAsync);
        var unknownReady = await Assert.ThrowsAsync<RpcException>(() => client.ModelReadyAsync(new ModelReadyRequest { Name = "nope" }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, unknownModel.StatusCode);
        Assert.Contains("'nope'", unknownModel.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.NotFound, unknownVersion.StatusCode);
        Assert.Equal(StatusCode.NotFound, unknownMetadata.StatusCode);
        Assert.Equal(StatusCode.NotFound, unknownReady.StatusCode);
        foreach (var (error, field) in new[]
        {
            (wrongDatatype, "inputs[0].datatype"), (half, "inputs[0].datatype"), (shapeAndRaw, "raw_input_contents[0]"),
            (shapeAndTyped, "inputs[0].contents.fp32_contents"), (typedOfAnotherType, "inputs[0].contents.fp32_contents"),
            (wrongShape, "inputs[0].shape"), (tooManyRows, "inputs[0].shape"), (unknownOutput, "outputs[0].name"), (noInput, "inputs"),
            (nan, "raw_input_contents[0][0]"),
        })
        {
            Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
            Assert.False(string.IsNullOrWhiteSpace(error.Status.Detail));
            Assert.Equal(field, error.Trailers.GetValue(GrpcStatusesField));
        }

        Assert.Contains("FP32", wrongDatatype.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("Serve:MaxInstances", tooManyRows.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.ResourceExhausted, tooLarge.StatusCode);
    }

    [Fact]
    public async Task ApiKeysGuardTheServiceButNotItsReflection()
    {
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Security:ApiKeys:0"] = "s3cret" });
        using var channel = Channel(app);
        var client = Client(channel);

        var refused = await Assert.ThrowsAsync<RpcException>(() => client.ServerLiveAsync(new ServerLiveRequest()).ResponseAsync);
        var wrong = await Assert.ThrowsAsync<RpcException>(() => client.ServerLiveAsync(new ServerLiveRequest(), new Metadata { { "authorization", "Bearer nope" } }).ResponseAsync);
        var bearer = await client.ServerLiveAsync(new ServerLiveRequest(), new Metadata { { "authorization", "Bearer s3cret" } });
        var header = await client.ServerLiveAsync(new ServerLiveRequest(), new Metadata { { "x-api-key", "s3cret" } });
        var services = await ListServicesAsync(channel);

        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        Assert.Contains("API key", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
        Assert.True(bearer.Live);
        Assert.True(header.Live);
        Assert.Contains("inference.GRPCInferenceService", services);
    }

    [Fact]
    public async Task ReflectionDescribesTheServiceFromItsProto()
    {
        await using var app = new ServeFactory();
        using var channel = Channel(app);
        var reflection = new ServerReflection.ServerReflectionClient(channel);

        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = "inference.GRPCInferenceService" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var file = Google.Protobuf.Reflection.FileDescriptorProto.Parser.ParseFrom(call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto[0]);

        Assert.Equal("inference", file.Package);
        var service = file.Service.Single(s => s.Name == "GRPCInferenceService");
        Assert.Equal(
            ["ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer", "ModelStreamInfer",
                "ModelConfig", "ModelStatistics", "RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload"],
            service.Method.Select(m => m.Name));
        Assert.Contains(await ListServicesAsync(channel), s => s == "inference.GRPCInferenceService");
    }

    private const string GrpcStatusesField = "field";

    private static async Task<List<string>> ListServicesAsync(global::Grpc.Net.Client.GrpcChannel channel)
    {
        var reflection = new ServerReflection.ServerReflectionClient(channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        return call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
    }
}
