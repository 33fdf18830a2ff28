using Google.Protobuf;
using Grpc.Core;
using MultiHeadServe.Api.Grpc;
using MultiHeadServe.Tests.Infrastructure;
using static MultiHeadServe.Tests.Infrastructure.OpenInferenceClients;

namespace MultiHeadServe.Tests.Api.Grpc;

/// <summary>
/// Every RPC called with messages that protobuf accepts but a careful client would not send (fields left empty, names
/// and versions that are not numbers, shapes that overflow, parameters of the wrong type, a stream of mistakes): each
/// answers a status that says what was wrong, never INTERNAL or UNKNOWN, and the service goes on serving.
/// </summary>
public sealed class GrpcOddRequestsTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly Metadata Key = new() { { "x-api-key", "s3cret" } };

    [Fact]
    public async Task OddButWellFormedMessagesGetAStatusThatNamesTheMistakeNotAnInternalError()
    {
        // With API keys, so that the repository RPCs exist too.
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Security:ApiKeys:0"] = "s3cret", ["Serve:MaxInstances"] = "4" });
        using var channel = Channel(app);
        var client = Client(channel);
        var row = ByteString.CopyFrom(new byte[12 * sizeof(float)]);

        static ModelInferRequest.Types.InferInputTensor Features(string datatype = "FP32", params long[] shape) =>
            new() { Name = "features", Datatype = datatype, Shape = { shape.Length == 0 ? [1, 12] : shape } };

        ModelInferRequest Infer(Action<ModelInferRequest>? edit = null)
        {
            var request = new ModelInferRequest { ModelName = "ranking", Inputs = { Features() }, RawInputContents = { row } };
            edit?.Invoke(request);
            return request;
        }

        var calls = new (string What, Func<Task> Call)[]
        {
            ("ModelReady without a name", () => client.ModelReadyAsync(new ModelReadyRequest(), Key).ResponseAsync),
            ("ModelReady, version not a number", () => client.ModelReadyAsync(new ModelReadyRequest { Name = "shapes", Version = "x" }, Key).ResponseAsync),
            ("ModelReady, version past int", () => client.ModelReadyAsync(new ModelReadyRequest { Name = "shapes", Version = "99999999999999999999" }, Key).ResponseAsync),
            ("ModelReady, version negative", () => client.ModelReadyAsync(new ModelReadyRequest { Name = "shapes", Version = "-1" }, Key).ResponseAsync),
            ("ModelMetadata without a name", () => client.ModelMetadataAsync(new ModelMetadataRequest(), Key).ResponseAsync),
            ("ModelMetadata, version not a number", () => client.ModelMetadataAsync(new ModelMetadataRequest { Name = "shapes", Version = "1.0" }, Key).ResponseAsync),
            ("ModelConfig without a name", () => client.ModelConfigAsync(new ModelConfigRequest(), Key).ResponseAsync),
            ("ModelConfig, version not a number", () => client.ModelConfigAsync(new ModelConfigRequest { Name = "shapes", Version = " 1" }, Key).ResponseAsync),
            ("ModelStatistics, a version without a name", () => client.ModelStatisticsAsync(new ModelStatisticsRequest { Version = "1" }, Key).ResponseAsync),
            ("ModelStatistics, version not a number", () => client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "shapes", Version = "one" }, Key).ResponseAsync),
            ("RepositoryIndex of another repository", () => client.RepositoryIndexAsync(new RepositoryIndexRequest { RepositoryName = "elsewhere", Ready = true }, Key).ResponseAsync),
            ("RepositoryModelLoad without a name", () => client.RepositoryModelLoadAsync(new RepositoryModelLoadRequest(), Key).ResponseAsync),
            ("RepositoryModelLoad of a path", () => client.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = "../models/shapes" }, Key).ResponseAsync),
            ("RepositoryModelLoad of an unknown model", () => client.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = "nope" }, Key).ResponseAsync),
            ("RepositoryModelLoad with a config", () => client.RepositoryModelLoadAsync(new RepositoryModelLoadRequest
            {
                ModelName = "nope",
                Parameters = { ["config"] = new ModelRepositoryParameter { StringParam = "{" } },
            }, Key).ResponseAsync),
            ("RepositoryModelUnload without a name", () => client.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest(), Key).ResponseAsync),
            ("RepositoryModelUnload of an unknown model", () => client.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest { ModelName = "nope" }, Key).ResponseAsync),
            ("ModelInfer, an empty message", () => client.ModelInferAsync(new ModelInferRequest(), Key).ResponseAsync),
            ("ModelInfer, a model and nothing else", () => client.ModelInferAsync(new ModelInferRequest { ModelName = "ranking" }, Key).ResponseAsync),
            ("ModelInfer, version not a number", () => client.ModelInferAsync(Infer(r => r.ModelVersion = "latest"), Key).ResponseAsync),
            ("ModelInfer, an input without a name", () => client.ModelInferAsync(Infer(r => r.Inputs[0].Name = ""), Key).ResponseAsync),
            ("ModelInfer, an input without a datatype", () => client.ModelInferAsync(Infer(r => r.Inputs[0].Datatype = ""), Key).ResponseAsync),
            ("ModelInfer, a datatype the protocol lacks", () => client.ModelInferAsync(Infer(r => r.Inputs[0].Datatype = "FP128"), Key).ResponseAsync),
            ("ModelInfer, no shape", () => client.ModelInferAsync(Infer(r => r.Inputs[0].Shape.Clear()), Key).ResponseAsync),
            ("ModelInfer, a negative dimension", () => client.ModelInferAsync(Infer(r => r.Inputs[0] = Features("FP32", -1, 12)), Key).ResponseAsync),
            ("ModelInfer, zero rows", () => client.ModelInferAsync(Infer(r => { r.Inputs[0] = Features("FP32", 0, 12); r.RawInputContents[0] = ByteString.Empty; }), Key).ResponseAsync),
            ("ModelInfer, a shape whose product overflows", () => client.ModelInferAsync(Infer(r => r.Inputs[0] = Features("FP32", long.MaxValue, long.MaxValue, 12)), Key).ResponseAsync),
            ("ModelInfer, a shape of many dimensions", () => client.ModelInferAsync(Infer(r => r.Inputs[0] = Features("FP32", [.. Enumerable.Repeat(1L, 64), 12])), Key).ResponseAsync),
            ("ModelInfer, raw and typed contents", () => client.ModelInferAsync(Infer(r => r.Inputs[0].Contents = new InferTensorContents { Fp32Contents = { new float[12] } }), Key).ResponseAsync),
            ("ModelInfer, more raw contents than inputs", () => client.ModelInferAsync(Infer(r => r.RawInputContents.Add(row)), Key).ResponseAsync),
            ("ModelInfer, the input twice", () => client.ModelInferAsync(Infer(r => { r.Inputs.Add(Features()); r.RawInputContents.Add(row); }), Key).ResponseAsync),
            ("ModelInfer, an unknown input", () => client.ModelInferAsync(Infer(r => r.Inputs[0].Name = "nope"), Key).ResponseAsync),
            ("ModelInfer, an output without a name", () => client.ModelInferAsync(Infer(r => r.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor())), Key).ResponseAsync),
            ("ModelInfer, an output twice", () => client.ModelInferAsync(Infer(r =>
            {
                r.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "click_logit" });
                r.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "click_logit" });
            }), Key).ResponseAsync),
            ("ModelInfer, classification as a string", () => client.ModelInferAsync(Infer(r => r.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor
            {
                Name = "click_logit",
                Parameters = { ["classification"] = new InferParameter { StringParam = "many" } },
            })), Key).ResponseAsync),
            ("ModelInfer, classification negative", () => client.ModelInferAsync(Infer(r => r.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor
            {
                Name = "click_logit",
                Parameters = { ["classification"] = new InferParameter { Int64Param = -3 } },
            })), Key).ResponseAsync),
            ("ModelInfer, classification past int", () => client.ModelInferAsync(Infer(r => r.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor
            {
                Name = "click_logit",
                Parameters = { ["classification"] = new InferParameter { Uint64Param = ulong.MaxValue } },
            })), Key).ResponseAsync),
            ("ModelInfer, REST's binary parameters", () => client.ModelInferAsync(Infer(r =>
            {
                r.Inputs[0].Parameters["binary_data_size"] = new InferParameter { Int64Param = -1 };
                r.Parameters["binary_data_output"] = new InferParameter { StringParam = "yes" };
            }), Key).ResponseAsync),
            ("ModelInfer, typed contents of a BYTES input", () => client.ModelInferAsync(Infer(r =>
            {
                r.RawInputContents.Clear();
                r.Inputs[0] = new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "BYTES", Shape = { 1, 12 }, Contents = new InferTensorContents { BytesContents = { ByteString.CopyFromUtf8("x") } } };
            }), Key).ResponseAsync),
        };

        var answers = new List<string>();
        foreach (var (what, call) in calls)
        {
            try
            {
                await call();
                answers.Add($"{what}: OK");
            }
            catch (RpcException ex)
            {
                answers.Add($"{what}: {ex.StatusCode} {ex.Status.Detail}");
                Assert.True(ex.StatusCode is not (StatusCode.Internal or StatusCode.Unknown), $"{what}: {ex.StatusCode} {ex.Status.Detail}");
                Assert.False(string.IsNullOrWhiteSpace(ex.Status.Detail), what);
            }
        }

        output.WriteLine(string.Join(Environment.NewLine, answers));
        // The service goes on serving.
        Assert.Single((await client.ModelInferAsync(Infer(r => r.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "click_logit" })), Key)).Outputs);
        Assert.NotEmpty(answers);
    }

    [Fact]
    public async Task AServiceTheServerDoesNotHaveIsUnimplementedNamingIt()
    {
        await using var app = new ServeFactory();
        using var channel = Channel(app);
        // A service of gRPC's own test suite; this server has no such service.
        var empty = Marshallers.Create(static (Google.Protobuf.WellKnownTypes.Empty m) => m.ToByteArray(), Google.Protobuf.WellKnownTypes.Empty.Parser.ParseFrom);
        var check = new Method<Google.Protobuf.WellKnownTypes.Empty, Google.Protobuf.WellKnownTypes.Empty>(MethodType.Unary, "grpc.testing.TestService", "EmptyCall", empty, empty);
        var unknownMethod = new Method<Google.Protobuf.WellKnownTypes.Empty, Google.Protobuf.WellKnownTypes.Empty>(MethodType.Unary, "inference.GRPCInferenceService", "Nothing", empty, empty);

        var service = await Assert.ThrowsAsync<RpcException>(async () => await channel.CreateCallInvoker().AsyncUnaryCall(check, null, new CallOptions(), new()));
        var method = await Assert.ThrowsAsync<RpcException>(async () => await channel.CreateCallInvoker().AsyncUnaryCall(unknownMethod, null, new CallOptions(), new()));

        Assert.Equal(StatusCode.Unimplemented, service.StatusCode);
        Assert.Contains("'grpc.testing.TestService'", service.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.Unimplemented, method.StatusCode);
        Assert.True((await Client(channel).ServerLiveAsync(new ServerLiveRequest())).Live);
    }

    [Fact]
    public async Task AStreamOfMistakesAnswersEachWithAnErrorMessageAndStaysOpen()
    {
        await using var app = new ServeFactory();
        using var channel = Channel(app);
        var client = Client(channel);
        var row = ByteString.CopyFrom(new byte[12 * sizeof(float)]);
        var mistakes = new[]
        {
            new ModelInferRequest(),
            new ModelInferRequest { ModelName = "ranking" },
            new ModelInferRequest { ModelName = "ranking", Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { long.MaxValue, 12 } } }, RawInputContents = { row } },
            new ModelInferRequest { ModelName = "ranking", ModelVersion = "x", Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 12 } } }, RawInputContents = { row } },
        };

        using var call = client.ModelStreamInfer();
        foreach (var mistake in mistakes)
        {
            await call.RequestStream.WriteAsync(mistake);
        }

        await call.RequestStream.WriteAsync(new ModelInferRequest
        {
            ModelName = "ranking",
            Id = "good",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 12 } } },
            RawInputContents = { row },
        });
        await call.RequestStream.CompleteAsync();

        var answers = new List<ModelStreamInferResponse>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            answers.Add(call.ResponseStream.Current);
        }

        Assert.Equal(mistakes.Length + 1, answers.Count);
        Assert.Equal(mistakes.Length, answers.Count(a => !string.IsNullOrEmpty(a.ErrorMessage)));
        Assert.Equal("good", Assert.Single(answers, a => string.IsNullOrEmpty(a.ErrorMessage)).InferResponse.Id);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }
}
