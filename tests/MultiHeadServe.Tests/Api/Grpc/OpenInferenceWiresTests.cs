using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Grpc.Net.Client;
using MultiHeadServe.Api.Grpc;
using MultiHeadServe.Observability;
using MultiHeadServe.Tests.Infrastructure;
using static MultiHeadServe.Tests.Infrastructure.OpenInferenceClients;

namespace MultiHeadServe.Tests.Api.Grpc;

/// <summary>
/// One request path whatever the wire: /v1, /v2 with JSON data, /v2 with binary data and gRPC give the same head
/// values for the same inputs, and a real process serves gRPC over plain-text HTTP/2 beside its REST port.
/// </summary>
public sealed partial class OpenInferenceWiresTests
{
    private static readonly float[] Input = [.. TensorTypesModel.Rows.SelectMany(r => r)];

    [Fact]
    public async Task V1RestJsonRestBinaryAndGrpcGiveIdenticalHeadValues()
    {
        using var repository = TensorTypesModel.Create();
        await using var app = new ServeFactory(repository.Settings());
        using var http = app.CreateClient();
        using var channel = Channel(app);
        var grpc = Client(channel);
        long[] shape = [3, 4];
        string[] heads = ["score", "logits"];

        var v1 = await (await http.PostJsonAsync("/v1/models/tensors/predict", new { instances = TensorTypesModel.Rows.Select(r => new { features = r }) })).JsonAsync();
        var json = await (await http.PostJsonAsync("/v2/models/tensors/infer", new
        {
            inputs = new[] { new { name = "features", datatype = "FP32", shape, data = Input } },
            outputs = heads.Select(h => new { name = h }),
        })).JsonAsync();
        var (_, binary) = await ReadBinaryAsync(await http.PostAsync("/v2/models/tensors/infer", BinaryBody(new
        {
            inputs = new[] { new { name = "features", datatype = "FP32", shape, parameters = new { binary_data_size = Input.Length * 4 } } },
            outputs = heads.Select(h => new { name = h, parameters = new { binary_data = true } }),
        }, Bytes(Input))));
        var raw = await grpc.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "tensors",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { shape } } },
            Outputs = { heads.Select(h => new ModelInferRequest.Types.InferRequestedOutputTensor { Name = h }) },
            RawInputContents = { ByteString.CopyFrom(Bytes(Input)) },
        });
        var typed = await grpc.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "tensors",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { shape }, Contents = new InferTensorContents { Fp32Contents = { Input } } } },
            Outputs = { heads.Select(h => new ModelInferRequest.Types.InferRequestedOutputTensor { Name = h }) },
        });

        // The regression heads have no scale or offset: /v1's values are the raw outputs.
        var predictions = v1.GetProperty("predictions").EnumerateArray().Select(p => p.GetProperty("heads")).ToList();
        var fromV1 = new Dictionary<string, int[]>
        {
            ["score"] = Bits(predictions.Select(p => p.GetProperty("score").GetProperty("value").GetSingle())),
            ["logits"] = Bits(predictions.SelectMany(p => p.GetProperty("logits").GetProperty("values").EnumerateArray().Select(v => v.GetSingle()))),
        };
        var outputs = json.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!, o => o.GetProperty("data"));
        for (var h = 0; h < heads.Length; h++)
        {
            var head = heads[h];
            Assert.Equal(fromV1[head], Bits(outputs[head].EnumerateArray().Select(v => v.GetSingle())));
            Assert.Equal(fromV1[head], Bits(Floats(binary[head])));
            Assert.Equal(head, raw.Outputs[h].Name);
            Assert.Equal(fromV1[head], Bits(Floats(raw.RawOutputContents[h].Span)));
            Assert.Equal(fromV1[head], Bits(typed.Outputs[h].Contents.Fp32Contents));
        }

        Assert.Equal(3, fromV1["score"].Length);
        Assert.Equal(9, fromV1["logits"].Length);
    }

    [Fact]
    public async Task Int64AndBoolOutputsAreTypedOrRawOverGrpcAsOverRest()
    {
        using var repository = TensorTypesModel.Create();
        await using var app = new ServeFactory(repository.Settings());
        using var http = app.CreateClient();
        using var channel = Channel(app);
        var grpc = Client(channel);
        string[] names = ["class_index", "positive"];

        var (_, binary) = await ReadBinaryAsync(await http.PostAsync("/v2/models/tensors/infer", BinaryBody(new
        {
            inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 3, 4 }, parameters = new { binary_data_size = Input.Length * 4 } } },
            outputs = names.Select(n => new { name = n }),
            parameters = new { binary_data_output = true },
        }, Bytes(Input))));
        var raw = await grpc.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "tensors",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 3, 4 } } },
            Outputs = { names.Select(n => new ModelInferRequest.Types.InferRequestedOutputTensor { Name = n }) },
            RawInputContents = { ByteString.CopyFrom(Bytes(Input)) },
        });
        var typed = await grpc.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "tensors",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 3, 4 }, Contents = new InferTensorContents { Fp32Contents = { Input } } } },
            Outputs = { names.Select(n => new ModelInferRequest.Types.InferRequestedOutputTensor { Name = n }) },
        });

        Assert.Equal(["INT64", "BOOL"], raw.Outputs.Select(o => o.Datatype));
        Assert.Equal(binary["class_index"], raw.RawOutputContents[0].ToByteArray());
        Assert.Equal(binary["positive"], raw.RawOutputContents[1].ToByteArray());
        Assert.Equal(Longs(binary["class_index"]), typed.Outputs[0].Contents.Int64Contents);
        Assert.All(typed.Outputs[0].Contents.Int64Contents, v => Assert.True(v >= TensorTypesModel.IndexOffset));
        Assert.Equal(binary["positive"]!.Select(b => b == 1), typed.Outputs[1].Contents.BoolContents);
        Assert.Equal([3L, 3], typed.Outputs[1].Shape);
    }

    [Fact]
    public async Task ARealProcessServesGrpcOverPlainTextHttp2OnItsGrpcPortAndRestOnItsOwn()
    {
        var port = FreePort();
        await using var service = await ServiceProcess.StartAsync(ServiceProcess.BuiltService, RepositoryPaths.Root, new Dictionary<string, string>
        {
            ["Serve__GrpcPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ModelRepository__Only__0"] = "ranking",
            // Start-up checks the store; on a busy machine its first answer can take longer than the default budget.
            ["FeatureStore__TimeoutMilliseconds"] = "5000",
        });
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var client = Client(channel);
        var reference = ReferenceData.Load("ranking");
        var row = reference.InputRow("features", 0);

        var live = await client.ServerLiveAsync(new ServerLiveRequest());
        // What a Kubernetes grpc probe on this port asks.
        var health = new global::Grpc.Health.V1.Health.HealthClient(channel);
        var readiness = await health.CheckAsync(new global::Grpc.Health.V1.HealthCheckRequest { Service = "readiness" });
        var inferred = await client.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "ranking",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, row.Length } } },
            Outputs = { new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "dwell" } },
            RawInputContents = { ByteString.CopyFrom(Bytes(row)) },
        });
        var rest = await service.Client.GetAsync("/v2/health/ready");

        Assert.True(live.Live);
        Assert.Equal(global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, readiness.Status);
        Assert.Equal(reference.OutputRow("dwell", 0)[0], Floats(inferred.RawOutputContents[0].Span)[0], 1e-4);
        Assert.Equal(HttpStatusCode.OK, rest.StatusCode);
        // The infer call has its log line, enriched as REST's are.
        var line = await service.WaitForLineAsync(l => l.Contains("/inference.GRPCInferenceService/ModelInfer", StringComparison.Ordinal), "for the gRPC infer call");
        Assert.Contains("responded 200", line, StringComparison.Ordinal);

        // While it drains after SIGTERM, gRPC calls are still answered (HTTP/2 has no Connection header to close with).
        service.Terminate();
        await service.WaitForLineAsync(l => l.Contains("drain", StringComparison.OrdinalIgnoreCase), "announcing the drain");
        Assert.True((await client.ServerLiveAsync(new ServerLiveRequest())).Live);
        Assert.Equal(global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing,
            (await health.CheckAsync(new global::Grpc.Health.V1.HealthCheckRequest { Service = "readiness" })).Status);
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// A gRPC call's deadline over a real process's gRPC port, timed against a bar well under a second: run alone, as the
/// outages are, because beside the suite's heaviest tests the test host itself can be late to see a deadline.
/// </summary>
[Collection(nameof(QueueDeadlines))]
public sealed class QueueDeadlineTests
{
    [Fact]
    public async Task ACallWhoseDeadlinePassesInTheQueueEndsAtItsDeadlineAndNeverRuns()
    {
        // A 1 s queue delay (no queue timeout) and a batch no single row fills: a request waits a second for company.
        using var repository = new TempRepository().With("ranking", manifest => manifest["batching"] = new System.Text.Json.Nodes.JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 64, ["maxQueueDelayMicroseconds"] = 1_000_000, ["queueTimeoutMicroseconds"] = 0, ["instances"] = 1,
        });
        var port = OpenInferenceWiresTests.FreePort();
        await using var service = await ServiceProcess.StartAsync(ServiceProcess.BuiltService, RepositoryPaths.Root, new Dictionary<string, string>
        {
            ["ModelRepository__Path"] = repository.Path,
            ["ModelRepository__Only__0"] = "ranking",
            ["Serve__GrpcPort"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["FeatureStore__TimeoutMilliseconds"] = "5000",
        });
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var client = Client(channel);
        var request = new ModelInferRequest
        {
            ModelName = "ranking",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 12 }, Contents = new InferTensorContents { Fp32Contents = { Enumerable.Repeat(0.5f, 12) } } } },
        };
        async Task<(long Requests, long Runs, long Failed)> StatsAsync()
        {
            var stats = (await (await service.Client.GetAsync("/v2/models/ranking/stats")).JsonAsync()).GetProperty("model_stats")[0];
            return (stats.GetProperty("inference_count").GetInt64(), stats.GetProperty("execution_count").GetInt64(),
                stats.GetProperty("inference_stats").GetProperty("fail").GetProperty("count").GetInt64());
        }

        // One call first, so the measured one's way to the queue (the connection, the code's first run) takes far less
        // than its deadline: on a slow machine a cold first call's deadline passed before it was queued.
        Assert.Contains((await client.ModelInferAsync(request)).Outputs, o => o.Name == "click_logit");
        var before = await StatsAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var late = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () =>
            await client.ModelInferAsync(request, deadline: DateTime.UtcNow.AddMilliseconds(250)));
        var answeredIn = clock.Elapsed;
        // Past the delay, when the batch would have run had the request stayed in the queue.
        await Task.Delay(TimeSpan.FromSeconds(1.2));
        var after = await StatsAsync();

        Assert.Equal(global::Grpc.Core.StatusCode.DeadlineExceeded, late.StatusCode);
        Assert.True(answeredIn < TimeSpan.FromMilliseconds(900), $"The call ended after {answeredIn.TotalMilliseconds:0} ms, not at its 250 ms deadline.");
        // The service let it go: nothing ran, nothing was served, one failure.
        Assert.Equal(before.Runs, after.Runs);
        Assert.Equal(before.Requests, after.Requests);
        Assert.Equal(before.Failed + 1, after.Failed);
        // And it serves the next call as usual (after the delay, alone).
        Assert.Contains((await client.ModelInferAsync(request)).Outputs, o => o.Name == "click_logit");
    }
}

/// <summary>Runs <see cref="QueueDeadlineTests"/> alone.</summary>
[CollectionDefinition(nameof(QueueDeadlines), DisableParallelization = true)]
public sealed class QueueDeadlines;

/// <summary>gRPC infer calls in the request metrics, counted exactly (so not beside other tests, as the exposition tests).</summary>
[Collection(nameof(MultiHeadServe.Tests.Observability.ExactMetrics))]
public sealed partial class GrpcMetricsTests
{
    [Fact]
    public async Task GrpcInferCallsAreCountedByModelHeadsAndStatusAndRunThroughTheBatcher()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var http = app.CreateClient();
        using var channel = Channel(app);
        var client = Client(channel);
        var row = reference.InputRow("features", 0);
        var runs = app.Service<ServeMetrics>().SessionRuns;

        ModelInferRequest Request(string datatype) => new()
        {
            ModelName = "ranking",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = datatype, Shape = { 1, row.Length } } },
            Outputs = { new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "dwell" } },
            RawInputContents = { ByteString.CopyFrom(Bytes(row)) },
        };

        await client.ModelInferAsync(Request("FP32"));
        await client.ModelInferAsync(Request("FP32"));
        await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => client.ModelInferAsync(Request("INT64")).ResponseAsync);
        var metrics = await http.GetStringAsync("/metrics");

        Assert.Equal(2, Sample(metrics, "mhs_requests_total", "heads=\"dwell\"", "model=\"ranking\"", $"route=\"{GrpcRoute}\"", "status=\"200\""));
        Assert.Equal(1, Sample(metrics, "mhs_requests_total", "model=\"ranking\"", $"route=\"{GrpcRoute}\"", "status=\"400\""));
        Assert.Equal(runs + 2, app.Service<ServeMetrics>().SessionRuns);
        Assert.Equal(2, Sample(metrics, "mhs_batch_rows_count", "model=\"ranking\""));
    }

    private const string GrpcRoute = "GrpcModelInfer";

    /// <summary>The one sample of <paramref name="name"/> whose labels include every one of <paramref name="labels"/>.</summary>
    private static double Sample(string exposition, string name, params string[] labels) =>
        exposition.Split('\n')
            .Where(line => line.StartsWith(name + "{", StringComparison.Ordinal) && labels.All(l => line.Contains(l, StringComparison.Ordinal)))
            .Select(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture))
            .Single();
}
