using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using MultiHeadServe.Api.Grpc;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using MultiHeadServe.Tests.Infrastructure;
using static MultiHeadServe.Tests.Infrastructure.OpenInferenceClients;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// Triton's statistics, model configuration and model repository extensions, on REST and on gRPC, as Triton's clients
/// and tools (perf_analyzer, model_analyzer) read them: counts that add up to the requests sent, a configuration that
/// says what the manifest and the session say, and the same answers on both wires.
/// </summary>
public sealed class TritonExtensionsTests
{
    private const string Key = "extensions-key-1";

    [Fact]
    public async Task StatisticsCountEveryWiresRequestsRowsRunsAndBatchSizes()
    {
        await using var app = new ServeFactory();
        using var http = app.CreateClient();
        using var channel = Channel(app);
        var grpc = Client(channel);
        var before = await VersionStatsAsync(http, "ranking");
        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        // One after another, so each runs alone (the demo's batcher has no queue delay): one run per request.
        Assert.Equal(HttpStatusCode.OK, (await http.PostJsonAsync("/v1/models/ranking/predict",
            new { instances = new[] { new { user_id = "u0042", item_id = "i0007" }, new { user_id = "u0042", item_id = "i0311" } } })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostJsonAsync("/v1/models/ranking/heads/revenue/predict", new { user_id = "u0042", item_id = "i0007" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostJsonAsync("/v2/models/ranking/infer", new
        {
            inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 3, 12 }, data = Enumerable.Repeat(0.5f, 36).ToArray() } },
        })).StatusCode);
        await grpc.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "ranking",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 12 }, Contents = new InferTensorContents { Fp32Contents = { Enumerable.Repeat(0.25f, 12) } } } },
        });

        var after = await VersionStatsAsync(http, "ranking");
        var end = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.Equal("1", after.GetProperty("version").GetString());
        Assert.Equal(7, Count(after, "inference_count") - Count(before, "inference_count")); // rows: 2 + 1 + 3 + 1
        Assert.Equal(4, Count(after, "execution_count") - Count(before, "execution_count"));
        Assert.InRange(after.GetProperty("last_inference").GetInt64(), start, end);
        var stats = after.GetProperty("inference_stats");
        var old = before.GetProperty("inference_stats");
        foreach (var phase in new[] { "success", "queue", "compute_input", "compute_infer", "compute_output" })
        {
            Assert.Equal(4, Duration(stats, phase).Count - Duration(old, phase).Count);
        }

        Assert.Equal(Duration(old, "fail"), Duration(stats, "fail"));
        Assert.Equal(Duration(old, "queue").Ns, Duration(stats, "queue").Ns); // nothing waited: each ran at once
        Assert.True(Duration(stats, "compute_infer").Ns > Duration(old, "compute_infer").Ns);
        // A request's time in the engine holds its run.
        Assert.True(Duration(stats, "success").Ns - Duration(old, "success").Ns >= Duration(stats, "compute_infer").Ns - Duration(old, "compute_infer").Ns);
        var batches = BatchCounts(after);
        var batchesBefore = BatchCounts(before);
        Assert.Equal(2, batches.GetValueOrDefault(1) - batchesBefore.GetValueOrDefault(1));
        Assert.Equal(1, batches.GetValueOrDefault(2) - batchesBefore.GetValueOrDefault(2));
        Assert.Equal(1, batches.GetValueOrDefault(3) - batchesBefore.GetValueOrDefault(3));
        Assert.Equal(Count(after, "execution_count"), batches.Values.Sum());

        // The other routes: every model's versions, one model's, one version's; gRPC says the same.
        var all = await (await http.GetAsync("/v2/models/stats")).JsonAsync();
        Assert.Equal(["conversion", "ranking", "ranking-mtl", "shapes"], all.GetProperty("model_stats").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        var versioned = await (await http.GetAsync("/v2/models/ranking/versions/1/stats")).JsonAsync();
        Assert.Equal(after.ToString(), versioned.GetProperty("model_stats")[0].ToString());
        var viaGrpc = await grpc.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "ranking" });
        AssertSame(after, viaGrpc.ModelStats.Single());
        Assert.Equal(4, (await grpc.ModelStatisticsAsync(new ModelStatisticsRequest())).ModelStats.Count);
    }

    [Fact]
    public async Task RequestsThatWaitForABatchReportTheirQueueTimeAndTheRunsTheyShared()
    {
        // A 20 ms queue delay and no preferred size: every request waits for the delay or a full batch of 64 rows.
        using var repository = new TempRepository().With("ranking", manifest => manifest["batching"] = new JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 64, ["maxQueueDelayMicroseconds"] = 20_000, ["instances"] = 1,
        });
        await using var app = new ServeFactory(repository.Settings());
        using var http = app.CreateClient();

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => http.PostJsonAsync("/v1/models/ranking/predict",
            new { features = Enumerable.Repeat(0.1f * i, 12).ToArray() })));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var stats = await VersionStatsAsync(http, "ranking");
        var inference = stats.GetProperty("inference_stats");
        Assert.Equal(8, Count(stats, "inference_count"));
        Assert.Equal(8, Duration(inference, "queue").Count);
        // The first request of every batch waited the whole delay.
        var runs = Count(stats, "execution_count");
        Assert.True(Duration(inference, "queue").Ns >= runs * 20_000_000L, $"{runs} batch(es), {Duration(inference, "queue").Ns} ns queued in all.");
        var batches = BatchCounts(stats);
        Assert.Equal(runs, batches.Values.Sum());
        Assert.Equal(8, batches.Sum(b => b.Key * b.Value));
        // Each request counts the run that served it.
        Assert.Equal(8, Duration(inference, "compute_infer").Count);
    }

    [Fact]
    public async Task ARunThatFailsCountsAsAFailureNotASuccess()
    {
        await using var app = new ServeFactory();
        using var http = app.CreateClient();
        var before = await VersionStatsAsync(http, "shapes");
        app.Service<ModelRegistry>().TryGet("shapes", out var shapes);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            app.Service<InferenceService>().RunAsync(shapes, new float[shapes.RowLength], shapes.ServedOutputs, new CancellationToken(canceled: true)));

        var after = await VersionStatsAsync(http, "shapes");
        Assert.Equal(1, Duration(after.GetProperty("inference_stats"), "fail").Count - Duration(before.GetProperty("inference_stats"), "fail").Count);
        Assert.Equal(Duration(before.GetProperty("inference_stats"), "success"), Duration(after.GetProperty("inference_stats"), "success"));
        Assert.Equal(Count(before, "inference_count"), Count(after, "inference_count"));
    }

    [Theory]
    [InlineData("ranking")]
    [InlineData("shapes")]
    public async Task TheConfigurationSaysWhatTheManifestAndTheSessionSayOnBothWires(string model)
    {
        await using var app = new ServeFactory();
        using var http = app.CreateClient();
        using var channel = Channel(app);
        var grpc = Client(channel);
        var manifest = ReferenceData.Load(model).Manifest;
        var batching = manifest.GetProperty("batching");
        var metadata = await (await http.GetAsync($"/v2/models/{model}")).JsonAsync();

        var config = await (await http.GetAsync($"/v2/models/{model}/config")).JsonAsync();

        Assert.Equal(model, config.GetProperty("name").GetString());
        Assert.Equal("onnxruntime_onnx", config.GetProperty("platform").GetString());
        Assert.Equal("onnxruntime", config.GetProperty("backend").GetString());
        Assert.Equal(256, config.GetProperty("max_batch_size").GetInt32()); // Serve:MaxInstances: the rows one request may carry
        Assert.Equal(1, config.GetProperty("version_policy").GetProperty("latest").GetProperty("num_versions").GetInt32());
        var input = config.GetProperty("input").EnumerateArray().Single();
        var metadataInput = metadata.GetProperty("inputs")[0];
        Assert.Equal(metadataInput.GetProperty("name").GetString(), input.GetProperty("name").GetString());
        Assert.Equal("TYPE_" + metadataInput.GetProperty("datatype").GetString(), input.GetProperty("data_type").GetString());
        Assert.Equal(metadataInput.GetProperty("shape").EnumerateArray().Skip(1).Select(d => d.GetInt64()), input.GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal(model == "shapes" ? "FORMAT_NCHW" : "FORMAT_NONE", input.GetProperty("format").GetString());
        var heads = manifest.GetProperty("heads").EnumerateArray().ToList();
        Assert.Equal(heads.Select(h => h.GetProperty("output").GetString()).Distinct(), config.GetProperty("output").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
        foreach (var output in config.GetProperty("output").EnumerateArray())
        {
            var head = heads.First(h => h.GetProperty("output").GetString() == output.GetProperty("name").GetString());
            var shape = metadata.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("name").GetString() == output.GetProperty("name").GetString()).GetProperty("shape");
            Assert.Equal(shape.EnumerateArray().Skip(1).Select(d => d.GetInt64()), output.GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()));
            Assert.Equal(head.TryGetProperty("labels", out var labels) ? labels.GetString() : null,
                output.TryGetProperty("label_filename", out var file) ? file.GetString() : null);
        }

        var dynamic = config.GetProperty("dynamic_batching");
        Assert.Equal(batching.GetProperty("preferredBatchSizes").EnumerateArray().Select(s => s.GetInt32()), dynamic.GetProperty("preferred_batch_size").EnumerateArray().Select(s => s.GetInt32()));
        Assert.Equal(batching.GetProperty("maxQueueDelayMicroseconds").GetInt64(), dynamic.GetProperty("max_queue_delay_microseconds").GetInt64());
        Assert.Equal(batching.GetProperty("maxQueueSize").GetInt32(), dynamic.GetProperty("default_queue_policy").GetProperty("max_queue_size").GetInt32());
        Assert.Equal("REJECT", dynamic.GetProperty("default_queue_policy").GetProperty("timeout_action").GetString());
        var group = config.GetProperty("instance_group").EnumerateArray().Single();
        Assert.Equal("KIND_CPU", group.GetProperty("kind").GetString());
        Assert.Equal(batching.GetProperty("instances").GetInt32(), group.GetProperty("count").GetInt32());
        var parameters = config.GetProperty("parameters");
        Assert.Equal(string.Join(',', heads.Select(h => h.GetProperty("name").GetString())), parameters.GetProperty("heads").GetProperty("string_value").GetString());
        Assert.Equal(batching.GetProperty("maxBatchSize").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture),
            parameters.GetProperty("max_batch_rows").GetProperty("string_value").GetString());
        Assert.Equal(config.ToString(), (await (await http.GetAsync($"/v2/models/{model}/versions/1/config")).JsonAsync()).ToString());

        // gRPC: the same configuration in Triton's messages.
        var viaGrpc = (await grpc.ModelConfigAsync(new ModelConfigRequest { Name = model })).Config;
        Assert.Equal(model, viaGrpc.Name);
        Assert.Equal("onnxruntime_onnx", viaGrpc.Platform);
        Assert.Equal("onnxruntime", viaGrpc.Backend);
        Assert.Equal(256, viaGrpc.MaxBatchSize);
        Assert.Equal(1u, viaGrpc.VersionPolicy.Latest.NumVersions);
        Assert.Equal(input.GetProperty("name").GetString(), viaGrpc.Input.Single().Name);
        Assert.Equal(MultiHeadServe.Api.Grpc.DataType.TypeFp32, viaGrpc.Input.Single().DataType);
        Assert.Equal(input.GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()), viaGrpc.Input.Single().Dims);
        Assert.Equal(model == "shapes" ? ModelInput.Types.Format.Nchw : ModelInput.Types.Format.None, viaGrpc.Input.Single().Format);
        Assert.Equal(config.GetProperty("output").EnumerateArray().Select(o => o.GetProperty("name").GetString()), viaGrpc.Output.Select(o => o.Name));
        Assert.Equal(config.GetProperty("output").EnumerateArray().Select(o => o.TryGetProperty("label_filename", out var f) ? f.GetString() : ""), viaGrpc.Output.Select(o => o.LabelFilename));
        Assert.Equal(dynamic.GetProperty("preferred_batch_size").EnumerateArray().Select(s => s.GetInt32()), viaGrpc.DynamicBatching.PreferredBatchSize);
        Assert.Equal((uint)batching.GetProperty("maxQueueSize").GetInt32(), viaGrpc.DynamicBatching.DefaultQueuePolicy.MaxQueueSize);
        Assert.Equal(ModelInstanceGroup.Types.Kind.Cpu, viaGrpc.InstanceGroup.Single().Kind);
        Assert.Equal(group.GetProperty("count").GetInt32(), viaGrpc.InstanceGroup.Single().Count);
        Assert.Equal(parameters.GetProperty("heads").GetProperty("string_value").GetString(), viaGrpc.Parameters["heads"].StringValue);
    }

    [Fact]
    public async Task AModelOrVersionThatIsNotServedIsNotFoundNamingTheField()
    {
        await using var app = new ServeFactory();
        using var http = app.CreateClient();
        using var channel = Channel(app);
        var grpc = Client(channel);

        foreach (var (path, field) in new[]
        {
            ("/v2/models/nope/stats", "model"), ("/v2/models/ranking/versions/9/stats", "version"), ("/v2/models/ranking/versions/x/stats", "version"),
            ("/v2/models/nope/config", "model"), ("/v2/models/shapes/versions/2/config", "version"),
        })
        {
            var response = await http.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            var body = await response.JsonAsync();
            Assert.Equal(field, body.GetProperty("field").GetString());
            Assert.False(string.IsNullOrEmpty(body.GetProperty("error").GetString()));
        }

        var config = await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelConfigAsync(new ModelConfigRequest { Name = "nope" }));
        var stats = await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "ranking", Version = "9" }));
        Assert.Equal(StatusCode.NotFound, config.StatusCode);
        Assert.Equal("model", config.Trailers.GetValue("field"));
        Assert.Equal(StatusCode.NotFound, stats.StatusCode);
        Assert.Equal("version", stats.Trailers.GetValue("field"));

        // gRPC can ask without a name: statistics then cover every model, but a configuration is one model's.
        var unnamed = await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelConfigAsync(new ModelConfigRequest()));
        Assert.Equal(StatusCode.NotFound, unnamed.StatusCode);
        Assert.Equal("model", unnamed.Trailers.GetValue("field"));
    }

    [Fact]
    public async Task ServerMetadataAnnouncesTheExtensionsOnBothWires()
    {
        await using var app = new ServeFactory();
        using var http = app.CreateClient();
        using var channel = Channel(app);

        var rest = (await (await http.GetAsync("/v2")).JsonAsync()).GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).ToList();
        var grpc = (await Client(channel).ServerMetadataAsync(new ServerMetadataRequest())).Extensions;

        Assert.Contains("statistics", rest);
        Assert.Contains("model_configuration", rest);
        Assert.Equal(rest, grpc);
    }

    [Fact]
    public async Task TheRepositoryOverGrpcListsUnloadsAndLoadsWithAKeyAndIsOffWithout()
    {
        await using (var open = new ServeFactory())
        {
            using var openChannel = Channel(open);
            var off = await Assert.ThrowsAsync<RpcException>(async () => await Client(openChannel).RepositoryIndexAsync(new RepositoryIndexRequest()));
            Assert.Equal(StatusCode.Unimplemented, off.StatusCode);
            Assert.Contains("API keys", off.Status.Detail, StringComparison.Ordinal);
        }

        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Security:ApiKeys:0"] = Key });
        using var channel = Channel(app);
        var grpc = Client(channel);
        var key = new Metadata { { "x-api-key", Key } };
        var shapesInput = new ModelInferRequest
        {
            ModelName = "shapes",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "image", Datatype = "FP32", Shape = { 1, 3, 64, 64 }, Contents = new InferTensorContents { Fp32Contents = { new float[3 * 64 * 64] } } } },
        };

        var index = await grpc.RepositoryIndexAsync(new RepositoryIndexRequest { Ready = true }, key);
        Assert.Contains(index.Models, m => m is { Name: "shapes", Version: "1", State: "READY" });
        await grpc.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest { ModelName = "shapes" }, key);
        var gone = await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelInferAsync(shapesInput, key));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        Assert.DoesNotContain((await grpc.RepositoryIndexAsync(new RepositoryIndexRequest { Ready = true }, key)).Models, m => m.Name == "shapes");

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await grpc.RepositoryModelLoadAsync(new RepositoryModelLoadRequest
        {
            ModelName = "shapes",
            Parameters = { ["config"] = new ModelRepositoryParameter { StringParam = "{}" } },
        }, key));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        await grpc.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = "shapes" }, key);
        Assert.Equal(2, (await grpc.ModelInferAsync(shapesInput, key)).Outputs.Count);

        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await grpc.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest { ModelName = "nope" }, key));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("model_name", unknown.Trailers.GetValue("field"));
        var unauthenticated = await Assert.ThrowsAsync<RpcException>(async () => await grpc.RepositoryIndexAsync(new RepositoryIndexRequest()));
        Assert.Equal(StatusCode.Unauthenticated, unauthenticated.StatusCode);
    }

    [Fact]
    public async Task AClassificationParameterAnswersTheTopClassesWithTheirLabelsOnEveryWire()
    {
        int[] shape = [2, 3, 64, 64];
        var data = BinaryTensorDataTests.ReferencePixels(2);
        var labels = File.ReadAllLines(Path.Combine(RepositoryPaths.Model("shapes"), "labels.txt")).Where(l => l.Length > 0).ToList();
        await using var app = new ServeFactory();
        using var http = app.CreateClient();
        using var channel = Channel(app);
        var grpc = Client(channel);
        object Request(object classification, bool binary = false) => new
        {
            inputs = new[] { new { name = "image", datatype = "FP32", shape, data } },
            outputs = new object[]
            {
                new { name = "class_logits", parameters = new Dictionary<string, object> { ["classification"] = classification, ["binary_data"] = binary } },
                new { name = "bbox" },
            },
        };

        var plain = await (await http.PostJsonAsync("/v2/models/shapes/infer", new { inputs = new[] { new { name = "image", datatype = "FP32", shape, data } } })).JsonAsync();
        var logits = plain.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("name").GetString() == "class_logits");
        var rows = shape[0];
        var width = logits.GetProperty("shape")[1].GetInt32();
        var values = logits.GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        // Independently: highest value first, "value:index:label". Each request is a run of its own, and the runtime's
        // float sums may differ in the last bits from one run to the next (it vectorises by the buffers' alignment), so
        // values are compared within 1e-5; indices and labels exactly (the demo's logits are far apart).
        void AssertClasses(int count, IEnumerable<string?> actual)
        {
            var expected = Enumerable.Range(0, rows).SelectMany(r => Enumerable.Range(0, width)
                .OrderByDescending(i => values[(r * width) + i]).Take(count).Select(i => (Value: values[(r * width) + i], Index: i))).ToList();
            var parsed = actual.Select(a => a!.Split(':')).ToList();
            Assert.Equal(expected.Count, parsed.Count);
            for (var k = 0; k < parsed.Count; k++)
            {
                Assert.Equal(3, parsed[k].Length);
                Assert.Equal(expected[k].Value, float.Parse(parsed[k][0], System.Globalization.CultureInfo.InvariantCulture), 1e-5f * Math.Max(1, Math.Abs(expected[k].Value)));
                Assert.Equal(expected[k].Index.ToString(System.Globalization.CultureInfo.InvariantCulture), parsed[k][1]);
                Assert.Equal(labels[expected[k].Index], parsed[k][2]);
            }
        }

        var json = await (await http.PostJsonAsync("/v2/models/shapes/infer", Request(2))).JsonAsync();
        var classes = json.GetProperty("outputs")[0];
        Assert.Equal("BYTES", classes.GetProperty("datatype").GetString());
        Assert.Equal([rows, 2], classes.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()));
        AssertClasses(2, classes.GetProperty("data").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("FP32", json.GetProperty("outputs")[1].GetProperty("datatype").GetString()); // other outputs as they are
        var all = await (await http.PostJsonAsync("/v2/models/shapes/infer", Request(99))).JsonAsync();
        AssertClasses(width, all.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(e => e.GetString()));

        // Binary: the BYTES tensor's own serialisation, each element's length (4 bytes, little-endian) then its bytes.
        var (header, binary) = await ReadBinaryAsync(await http.PostAsync("/v2/models/shapes/infer", new StringContent(JsonSerializer.Serialize(Request(2, binary: true)), System.Text.Encoding.UTF8, "application/json")));
        Assert.Equal("BYTES", header.GetProperty("outputs")[0].GetProperty("datatype").GetString());
        AssertClasses(2, Strings(binary["class_logits"]!));

        // gRPC: typed contents as bytes_contents; raw contents as the same bytes as REST's binary output.
        var parameter = new InferParameter { Int64Param = 2 };
        ModelInferRequest GrpcRequest(bool raw)
        {
            var request = new ModelInferRequest
            {
                ModelName = "shapes",
                Outputs = { new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "class_logits", Parameters = { ["classification"] = parameter } } },
            };
            var input = new ModelInferRequest.Types.InferInputTensor { Name = "image", Datatype = "FP32", Shape = { shape.Select(d => (long)d) } };
            if (raw)
            {
                request.RawInputContents.Add(Google.Protobuf.ByteString.CopyFrom(Bytes(data)));
            }
            else
            {
                input.Contents = new InferTensorContents { Fp32Contents = { data } };
            }

            request.Inputs.Add(input);
            return request;
        }

        var typed = (await grpc.ModelInferAsync(GrpcRequest(raw: false))).Outputs.Single();
        Assert.Equal("BYTES", typed.Datatype);
        Assert.Equal([(long)rows, 2], typed.Shape);
        AssertClasses(2, typed.Contents.BytesContents.Select(b => b.ToStringUtf8()));
        var rawResponse = await grpc.ModelInferAsync(GrpcRequest(raw: true));
        Assert.Equal("BYTES", rawResponse.Outputs.Single().Datatype);
        AssertClasses(2, Strings(rawResponse.RawOutputContents.Single().ToByteArray()));

        // Mistakes name the parameter.
        foreach (var wrong in new object[] { 0, -2, "two", 1.5 })
        {
            var response = await http.PostJsonAsync("/v2/models/shapes/infer", Request(wrong));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("outputs[0].parameters.classification", (await response.JsonAsync()).GetProperty("field").GetString());
        }

        parameter = new InferParameter { BoolParam = true };
        var notCount = await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelInferAsync(GrpcRequest(raw: false)));
        Assert.Equal(StatusCode.InvalidArgument, notCount.StatusCode);
        Assert.Equal("outputs[0].parameters.classification", notCount.Trailers.GetValue("field"));
    }

    [Fact]
    public async Task ClassificationRanksFp32OutputsAndNamesAnyOtherType()
    {
        using var repository = TensorTypesModel.Create();
        await using var app = new ServeFactory(repository.Settings());
        using var http = app.CreateClient();
        object Request(string output) => new
        {
            inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 1, 4 }, data = TensorTypesModel.Rows[0] } },
            outputs = new[] { new { name = output, parameters = new { classification = 2 } } },
        };

        var refused = await http.PostJsonAsync($"/v2/models/{TensorTypesModel.Name}/infer", Request("class_index"));
        var ranked = await http.PostJsonAsync($"/v2/models/{TensorTypesModel.Name}/infer", Request("logits"));

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var problem = await refused.JsonAsync();
        Assert.Equal("outputs[0].parameters.classification", problem.GetProperty("field").GetString());
        Assert.Contains("INT64", problem.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, ranked.StatusCode);
        var strings = (await ranked.JsonAsync()).GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal(2, strings.Count);
        Assert.All(strings, s => Assert.Equal(1, s.Count(c => c == ':'))); // no labels file: value:index
    }

    [Fact]
    public async Task AStreamAnswersEveryRequestByItsIdAndAMistakeIsAnAnswerNotTheEnd()
    {
        await using var app = new ServeFactory();
        using var channel = Channel(app);
        var grpc = Client(channel);
        var metrics = app.Service<MultiHeadServe.Observability.ServeMetrics>();
        var requestsBefore = metrics.Requests;
        ModelInferRequest Request(int i) => new()
        {
            Id = $"s-{i}",
            ModelName = i == 7 ? "nope" : "ranking",
            Outputs = { new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "revenue" } },
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 12 }, Contents = new InferTensorContents { Fp32Contents = { Enumerable.Repeat(0.1f * i, 12) } } } },
        };

        using var call = grpc.ModelStreamInfer();
        for (var i = 0; i < 20; i++)
        {
            await call.RequestStream.WriteAsync(Request(i));
        }

        await call.RequestStream.CompleteAsync();
        var answers = new Dictionary<string, ModelStreamInferResponse>(StringComparer.Ordinal);
        await foreach (var answer in call.ResponseStream.ReadAllAsync())
        {
            answers.Add(answer.InferResponse.Id, answer);
        }

        Assert.Equal(20, answers.Count);
        Assert.Contains("No model named 'nope'", answers["s-7"].ErrorMessage, StringComparison.Ordinal);
        Assert.Equal("nope", answers["s-7"].InferResponse.ModelName);
        for (var i = 0; i < 20; i++)
        {
            if (i == 7)
            {
                continue;
            }

            // The same request as a unary call gives the same revenue.
            var unary = await grpc.ModelInferAsync(Request(i));
            var streamed = answers[$"s-{i}"];
            Assert.Equal("", streamed.ErrorMessage);
            Assert.Equal("revenue", streamed.InferResponse.Outputs.Single().Name);
            Assert.Equal(unary.Outputs.Single().Contents.Fp32Contents.Single(), streamed.InferResponse.Outputs.Single().Contents.Fp32Contents.Single(), 1e-5f);
        }

        Assert.Equal(20 + 19, metrics.Requests - requestsBefore); // each streamed request counts, then the unary ones
    }

    [Fact]
    public async Task RequestsOfOneStreamRunTogether()
    {
        // A 200 ms queue delay: requests written one after another on one stream are in the queue together.
        using var repository = new TempRepository().With("ranking", manifest => manifest["batching"] = new JsonObject
        {
            ["enabled"] = true, ["maxBatchSize"] = 64, ["maxQueueDelayMicroseconds"] = 200_000, ["instances"] = 1,
        });
        await using var app = new ServeFactory(repository.Settings());
        using var channel = Channel(app);
        using var http = app.CreateClient();
        using var call = Client(channel).ModelStreamInfer();

        for (var i = 0; i < 16; i++)
        {
            await call.RequestStream.WriteAsync(new ModelInferRequest
            {
                Id = $"b-{i}",
                ModelName = "ranking",
                Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 12 }, Contents = new InferTensorContents { Fp32Contents = { Enumerable.Repeat(0.05f * i, 12) } } } },
            });
        }

        await call.RequestStream.CompleteAsync();
        var answers = await call.ResponseStream.ReadAllAsync().ToListAsync();

        Assert.Equal(16, answers.Count);
        Assert.All(answers, a => Assert.Equal("", a.ErrorMessage));
        var stats = await VersionStatsAsync(http, "ranking");
        Assert.Equal(16, Count(stats, "inference_count"));
        Assert.True(Count(stats, "execution_count") < 16, $"16 requests of one stream took {Count(stats, "execution_count")} runs: they did not run concurrently.");
    }

    [Fact]
    public async Task WhenTheServiceStopsAStreamAnswersWhatItReadAndEnds()
    {
        await using var app = new ServeFactory();
        using var channel = Channel(app);
        using var call = Client(channel).ModelStreamInfer();
        var request = new ModelInferRequest
        {
            Id = "before-stop",
            ModelName = "ranking",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 12 }, Contents = new InferTensorContents { Fp32Contents = { Enumerable.Repeat(0.5f, 12) } } } },
        };
        await call.RequestStream.WriteAsync(request);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal("before-stop", call.ResponseStream.Current.InferResponse.Id);

        app.Service<IHostApplicationLifetime>().StopApplication();

        // The client has not completed its side; the service ends the call itself, with OK.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.False(await call.ResponseStream.MoveNext(timeout.Token));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    private static List<string> Strings(byte[] bytes)
    {
        var strings = new List<string>();
        for (var offset = 0; offset < bytes.Length;)
        {
            var length = BitConverter.ToInt32(bytes, offset);
            strings.Add(System.Text.Encoding.UTF8.GetString(bytes, offset + 4, length));
            offset += 4 + length;
        }

        return strings;
    }

    private static async Task<JsonElement> VersionStatsAsync(HttpClient http, string model)
    {
        var response = await http.GetAsync($"/v2/models/{model}/stats");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.JsonAsync()).GetProperty("model_stats").EnumerateArray().Single();
    }

    private static long Count(JsonElement stats, string name) => stats.GetProperty(name).GetInt64();

    private static (long Count, long Ns) Duration(JsonElement parent, string name) =>
        (parent.GetProperty(name).GetProperty("count").GetInt64(), parent.GetProperty(name).GetProperty("ns").GetInt64());

    /// <summary>Runs per batch size, from batch_stats (each phase counts every run once).</summary>
    private static Dictionary<int, long> BatchCounts(JsonElement stats) => stats.GetProperty("batch_stats").EnumerateArray().ToDictionary(
        b => b.GetProperty("batch_size").GetInt32(),
        b =>
        {
            var count = b.GetProperty("compute_infer").GetProperty("count").GetInt64();
            Assert.Equal(count, b.GetProperty("compute_input").GetProperty("count").GetInt64());
            Assert.Equal(count, b.GetProperty("compute_output").GetProperty("count").GetInt64());
            return count;
        });

    private static void AssertSame(JsonElement rest, MultiHeadServe.Api.Grpc.ModelStatistics grpc)
    {
        Assert.Equal(rest.GetProperty("name").GetString(), grpc.Name);
        Assert.Equal(rest.GetProperty("version").GetString(), grpc.Version);
        Assert.Equal((ulong)Count(rest, "last_inference"), grpc.LastInference);
        Assert.Equal((ulong)Count(rest, "inference_count"), grpc.InferenceCount);
        Assert.Equal((ulong)Count(rest, "execution_count"), grpc.ExecutionCount);
        var stats = rest.GetProperty("inference_stats");
        foreach (var (name, duration) in new[]
        {
            ("success", grpc.InferenceStats.Success), ("fail", grpc.InferenceStats.Fail), ("queue", grpc.InferenceStats.Queue),
            ("compute_input", grpc.InferenceStats.ComputeInput), ("compute_infer", grpc.InferenceStats.ComputeInfer),
            ("compute_output", grpc.InferenceStats.ComputeOutput),
        })
        {
            Assert.Equal(((ulong)Duration(stats, name).Count, (ulong)Duration(stats, name).Ns), (duration.Count, duration.Ns));
        }

        Assert.Equal(BatchCounts(rest).Select(b => ((ulong)b.Key, (ulong)b.Value)), grpc.BatchStats.Select(b => (b.BatchSize, b.ComputeInfer.Count)));
    }
}
