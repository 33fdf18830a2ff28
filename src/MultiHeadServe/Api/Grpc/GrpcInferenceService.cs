using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using MultiHeadServe.Features;
using MultiHeadServe.Heads;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;
using MultiHeadServe.Onnx;
using Serilog;

namespace MultiHeadServe.Api.Grpc;

/// <summary>
/// The Open Inference Protocol over gRPC (<c>inference.GRPCInferenceService</c>), for KServe's and Triton's gRPC
/// clients. Metadata and readiness answer what the REST routes answer (they are asked the same handlers); an infer
/// follows the same rules (<see cref="OpenInferenceCall"/>), batcher, limits and telemetry as REST. Every head's output
/// is a tensor; the request's <c>outputs</c> picks some, and a subset runs the graph pruned to them. A request with
/// <c>raw_input_contents</c> is answered with <c>raw_output_contents</c>, one with typed <c>contents</c> in kind.
/// Client mistakes are gRPC statuses with the REST error's message and the faulty field in the trailer <c>field</c>.
/// </summary>
internal sealed class GrpcInferenceService(
    ModelRegistry registry,
    InferenceService inference,
    FeatureStoreHealth store,
    ServeMetrics metrics,
    IDiagnosticContext diagnostics,
    Security.ApiKeys keys,
    ModelRepository repository,
    IHostApplicationLifetime lifetime,
    ILogger<GrpcInferenceService> logger,
    BodyBudget bodies,
    IOptions<ServeOptions> options) : GRPCInferenceService.GRPCInferenceServiceBase
{
    /// <summary>The route label of gRPC infer calls in the request metrics (REST's are the endpoint names).</summary>
    public const string InferRoute = "GrpcModelInfer";

    /// <summary>The route label of requests read from a ModelStreamInfer stream.</summary>
    public const string StreamInferRoute = "GrpcModelStreamInfer";

    /// <summary>Requests of one stream run at once at most; reading waits while that many are unanswered.</summary>
    public const int StreamRequestsInFlight = 64;

    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    public override Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerReadyResponse { Ready = OpenInferenceApi.ServerReady(registry).Result is Ok<V2Ready> });

    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context)
    {
        var metadata = OpenInferenceApi.ServerMetadata(keys).Value!;
        return Task.FromResult(new ServerMetadataResponse { Name = metadata.Name, Version = metadata.Version, Extensions = { metadata.Extensions } });
    }

    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context)
    {
        var metadata = Metadata(request.Name, request.Version);
        var response = new ModelMetadataResponse { Name = metadata.Name, Platform = metadata.Platform, Versions = { metadata.Versions } };
        response.Inputs.AddRange(metadata.Inputs.Select(Describe));
        response.Outputs.AddRange(metadata.Outputs.Select(Describe));
        return Task.FromResult(response);
    }

    public override async Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context)
    {
        // An unknown model or version is NOT_FOUND, as REST's 404; a served one is ready or not.
        _ = Metadata(request.Name, request.Version);
        var ready = await OpenInferenceApi.ModelReady(request.Name, request.Version.Length == 0 ? null : request.Version, registry, store, context.CancellationToken);
        return new ModelReadyResponse { Ready = ready.Result is Ok<V2ModelReady> };
    }

    public override Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        var telemetry = new RequestTelemetry();
        context.GetHttpContext().Features.Set(telemetry);
        return InferAsync(request, telemetry, InferRoute, diagnose: true, context.CancellationToken);
    }

    /// <summary>
    /// Triton's streaming infer: each request read from the stream runs as a unary call would (same rules, batcher and
    /// metrics, route <c>GrpcModelStreamInfer</c>), at most <see cref="StreamRequestsInFlight"/> at once, and its answer is
    /// written as soon as it is ready, so concurrent requests of one stream batch together and answers may come in
    /// another order than the requests (the request's <c>id</c> comes back with its answer). A request's mistake is an
    /// answer with <c>error_message</c> (and the request's id and model), not the end of the stream. When the service
    /// stops, it reads no more requests, answers those it has read, and ends the stream.
    /// </summary>
    public override async Task ModelStreamInfer(IAsyncStreamReader<ModelInferRequest> requestStream, IServerStreamWriter<ModelStreamInferResponse> responseStream,
        ServerCallContext context)
    {
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        using var writing = new SemaphoreSlim(1, 1);
        var inFlight = new List<Task>();
        try
        {
            while (await requestStream.MoveNext(reading.Token))
            {
                if (inFlight.Count >= StreamRequestsInFlight)
                {
                    inFlight.Remove(await Task.WhenAny(inFlight));
                }

                // Held until answered, as a unary call's message is (GrpcMessageBudgetMiddleware): the parsed message and its tensor.
                var request = requestStream.Current;
                var bytes = request.CalculateSize() * (GrpcMessageBudgetMiddleware.Factor - 1L);
                bytes = bytes <= BodyBudget.Uncounted ? 0 : bytes;
                try
                {
                    bodies.Reserve(bytes);
                }
                catch (FeatureRequestException ex)
                {
                    inFlight.Add(WriteAsync(Error(request, ex.Message)));
                    continue;
                }

                inFlight.Add(AnswerAsync(request, bytes));
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            // Stopping: what was read is answered below, then the stream ends.
        }
        finally
        {
            await Task.WhenAll(inFlight);
        }

        async Task AnswerAsync(ModelInferRequest request, long bytes)
        {
            ModelStreamInferResponse answer;
            try
            {
                answer = new ModelStreamInferResponse { InferResponse = await InferAsync(request, new RequestTelemetry(), StreamInferRoute, diagnose: false, context.CancellationToken) };
            }
            catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled)
            {
                answer = Error(request, ex.Status.Detail);
            }
#pragma warning disable CA1031 // One request's failure is its own answer; the stream's other requests go on.
            catch (Exception ex) when (ex is not OperationCanceledException)
#pragma warning restore CA1031
            {
                logger.LogError(ex, "A streamed infer request for model {Model} failed", request.ModelName);
                answer = Error(request, "The server could not answer this request; its log has the reason.");
            }
            finally
            {
                bodies.Release(bytes);
            }

            await WriteAsync(answer);
        }

        async Task WriteAsync(ModelStreamInferResponse answer)
        {
            await writing.WaitAsync(context.CancellationToken);
            try
            {
                await responseStream.WriteAsync(answer, context.CancellationToken);
            }
            finally
            {
                writing.Release();
            }
        }
    }

    private static ModelStreamInferResponse Error(ModelInferRequest request, string message) => new()
    {
        ErrorMessage = message,
        InferResponse = new ModelInferResponse { ModelName = request.ModelName, ModelVersion = request.ModelVersion, Id = request.Id },
    };

    /// <summary>One infer call; a client mistake is an <see cref="RpcException"/> with REST's message and the field at fault.</summary>
    private async Task<ModelInferResponse> InferAsync(ModelInferRequest request, RequestTelemetry telemetry, string route, bool diagnose, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        var status = StatusCodes.Status200OK;
        LoadedModel? held = null;
        try
        {
            // The version is held for the whole call: a reload meanwhile finishes it on the version it started on.
            switch (registry.TryLease(request.ModelName, request.ModelVersion.Length == 0 ? null : request.ModelVersion, out var model))
            {
                case ModelLookup.UnknownModel:
                    throw new FeatureRequestException(StatusCodes.Status404NotFound, "Unknown model", "model_name",
                        $"No model named '{request.ModelName}' is served. Served models: {string.Join(", ", registry.All.Select(m => m.Name).Order(StringComparer.Ordinal))}.");
                case ModelLookup.UnknownVersion:
                    registry.TryGetServed(request.ModelName, out var served);
                    throw new FeatureRequestException(StatusCodes.Status404NotFound, "Unknown version", "model_version",
                        $"Model '{request.ModelName}' does not serve version '{request.ModelVersion}'; served versions: {string.Join(", ", served?.ServedVersions ?? [])}.");
            }

            held = model;
            telemetry.Model = model.Name;

            var raw = request.RawInputContents.Count > 0;
            var rows = ReadInput(request, model, raw);
            var outputs = OpenInferenceCall.Outputs(model, request.Outputs.Count == 0 ? null : request.Outputs.Select(o => o.Name).ToList());
            var classifications = Classifications(request, model, outputs);
            var result = await OpenInferenceCall.RunAsync(inference, model, rows, outputs, telemetry, cancellationToken);
            return Response(request, model, OpenInferenceCall.Tensors(model, outputs, classifications, result), raw);
        }
        catch (FeatureRequestException ex)
        {
            status = ex.Status;
            if (diagnose)
            {
                diagnostics.Set("GrpcStatus", GrpcStatuses.FromHttp(ex.Status));
            }

            throw GrpcStatuses.Exception(ex.Status, ex.Message, ex.Field);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            status = 499;
            throw new RpcException(new Status(StatusCode.Cancelled, "The call was cancelled."));
        }
        catch (Exception)
        {
            status = StatusCodes.Status500InternalServerError;
            throw;
        }
        finally
        {
            held?.Release();
            metrics.RecordRequest(telemetry, telemetry.Model ?? RequestTelemetryMiddleware.UnknownModel, route, status,
                Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }

    /// <summary>The input's values, from raw bytes or typed FP32 contents, once every declared size is checked.</summary>
    private float[] ReadInput(ModelInferRequest request, LoadedModel model, bool raw)
    {
        var input = request.Inputs.Count > 0 ? request.Inputs[0] : null;
        var count = OpenInferenceCall.CheckInput(model, request.Inputs.Count, input?.Name, input?.Datatype, input?.Shape, options.Value.MaxInstances, acceptsFp64: false);
        if (raw)
        {
            if (request.RawInputContents.Count != request.Inputs.Count)
            {
                throw FeatureRequestException.BadField("raw_input_contents",
                    $"raw_input_contents has {request.RawInputContents.Count} entries for {request.Inputs.Count} inputs; give one per input, in order.");
            }

            if (input!.Contents is not null)
            {
                throw FeatureRequestException.BadField("inputs[0].contents", "An input travels in raw_input_contents or in contents, not both.");
            }

            return OpenInferenceCall.ReadRaw(request.RawInputContents[0].Span, input.Shape, count, "raw_input_contents[0]", "raw_input_contents[0]");
        }

        var contents = input!.Contents;
        var fp32 = contents?.Fp32Contents.Count ?? 0;
        if (fp32 != count)
        {
            throw FeatureRequestException.BadField("inputs[0].contents.fp32_contents",
                $"shape {OpenInferenceCall.Format(input.Shape)} needs {count} values; fp32_contents has {fp32}{OtherContents(contents)}.");
        }

        var values = new float[count];
        contents!.Fp32Contents.CopyTo(values, 0);
        OpenInferenceCall.CheckFinite(values, "inputs[0].contents.fp32_contents");
        return values;
    }

    private static string OtherContents(InferTensorContents? contents) =>
        contents is not null && (contents.Fp64Contents.Count + contents.IntContents.Count + contents.Int64Contents.Count +
            contents.UintContents.Count + contents.Uint64Contents.Count + contents.BoolContents.Count + contents.BytesContents.Count) > 0
            ? " (values of another type were sent; FP32 values go in fp32_contents)"
            : "";

    /// <summary>Per output, the classes asked for with the classification extension's <c>int64_param</c> (0: none).</summary>
    private static int[] Classifications(ModelInferRequest request, LoadedModel model, IReadOnlyList<string> outputs)
    {
        var counts = new int[outputs.Count];
        for (var o = 0; o < request.Outputs.Count; o++)
        {
            if (request.Outputs[o].Parameters.TryGetValue(OpenInferenceClassification.Parameter, out var parameter))
            {
                var field = $"outputs[{o}].parameters.classification";
                counts[o] = parameter.ParameterChoiceCase == InferParameter.ParameterChoiceOneofCase.Int64Param
                    ? OpenInferenceClassification.Check(model, outputs[o], parameter.Int64Param, field)
                    : throw FeatureRequestException.BadField(field, "classification is an int64_param: the number of classes to return per row.");
            }
        }

        return counts;
    }

    private static ModelInferResponse Response(ModelInferRequest request, LoadedModel model, OutputTensor[] tensors, bool raw)
    {
        var response = new ModelInferResponse
        {
            ModelName = model.Name,
            ModelVersion = model.Version.ToString(CultureInfo.InvariantCulture),
            Id = request.Id,
        };

        // Half floats have no typed field: when an output is one, every output goes raw (the protocol forbids mixing).
        raw |= tensors.Any(tensor => tensor.ElementType is TensorElementType.Float16 or TensorElementType.BFloat16);
        foreach (var tensor in tensors)
        {
            var output = new ModelInferResponse.Types.InferOutputTensor { Name = tensor.Name, Datatype = OpenInferenceCall.Datatype(tensor), Shape = { tensor.Shape } };
            if (raw)
            {
                response.RawOutputContents.Add(ByteString.CopyFrom(OpenInferenceCall.RawBytes(tensor)));
            }
            else
            {
                output.Contents = Contents(tensor);
            }

            response.Outputs.Add(output);
        }

        return response;
    }

    private static InferTensorContents Contents(OutputTensor tensor)
    {
        var contents = new InferTensorContents();
        var raw = tensor.RawData.Span;
        switch (tensor.ElementType)
        {
            case TensorElementType.Float32:
                contents.Fp32Contents.Capacity = tensor.Data.Length;
                foreach (var value in tensor.Data.Span)
                {
                    contents.Fp32Contents.Add(value);
                }

                break;
            case TensorElementType.Int64:
                contents.Int64Contents.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(raw).ToArray());
                break;
            case TensorElementType.Bool:
                contents.BoolContents.AddRange(raw.ToArray().Select(b => b != 0));
                break;
            case TensorElementType.Int32:
                contents.IntContents.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(raw).ToArray());
                break;
            case TensorElementType.Int16:
                contents.IntContents.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(raw).ToArray().Select(v => (int)v));
                break;
            case TensorElementType.Int8:
                contents.IntContents.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(raw).ToArray().Select(v => (int)v));
                break;
            case TensorElementType.UInt8:
                contents.UintContents.AddRange(raw.ToArray().Select(v => (uint)v));
                break;
            case TensorElementType.UInt16:
                contents.UintContents.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(raw).ToArray().Select(v => (uint)v));
                break;
            case TensorElementType.UInt32:
                contents.UintContents.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(raw).ToArray());
                break;
            case TensorElementType.UInt64:
                contents.Uint64Contents.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(raw).ToArray());
                break;
            case TensorElementType.Float64:
                contents.Fp64Contents.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(raw).ToArray());
                break;
            case TensorElementType.String:
                contents.BytesContents.AddRange(OpenInferenceClassification.Elements(tensor.RawData).Select(element => ByteString.CopyFrom(element.Span)));
                break;
            default:
                throw new InvalidOperationException($"Output '{tensor.Name}' is {tensor.ElementType.ToName()}, which has no typed contents.");
        }

        return contents;
    }

    /// <summary>The REST handler's metadata, or its problem as a gRPC status.</summary>
    private V2ModelMetadata Metadata(string name, string version) =>
        ValueOrStatus<V2ModelMetadata>(OpenInferenceApi.ModelMetadata(name, version.Length == 0 ? null : version, registry).Result);

    public override Task<ModelConfigResponse> ModelConfig(ModelConfigRequest request, ServerCallContext context)
    {
        var config = ValueOrStatus<V2ModelConfig>(
            ModelConfigurationApi.Configuration(request.Name, request.Version.Length == 0 ? null : request.Version, registry, options).Result);
        return Task.FromResult(new ModelConfigResponse { Config = GrpcModelConfig.From(config) });
    }

    public override Task<ModelStatisticsResponse> ModelStatistics(ModelStatisticsRequest request, ServerCallContext context)
    {
        var statistics = ValueOrStatus<V2StatisticsResponse>(ModelStatisticsApi.Statistics(
            request.Name.Length == 0 ? null : request.Name, request.Version.Length == 0 ? null : request.Version, registry).Result);
        var response = new ModelStatisticsResponse();
        response.ModelStats.AddRange(statistics.ModelStats.Select(GrpcModelConfig.From));
        return Task.FromResult(response);
    }

    public override Task<RepositoryIndexResponse> RepositoryIndex(RepositoryIndexRequest request, ServerCallContext context)
    {
        RepositoryServed();
        var response = new RepositoryIndexResponse();
        response.Models.AddRange(repository.Index(request.Ready).Select(entry => new RepositoryIndexResponse.Types.ModelIndex
        {
            Name = entry.Name,
            Version = entry.Version ?? "",
            State = entry.State ?? "",
            Reason = entry.Reason ?? "",
        }));
        return Task.FromResult(response);
    }

    public override async Task<RepositoryModelLoadResponse> RepositoryModelLoad(RepositoryModelLoadRequest request, ServerCallContext context)
    {
        RepositoryServed();
        if (ModelRepositoryApi.UnsupportedLoadParameter(request.Parameters.Keys) is { } unsupported)
        {
            throw GrpcStatuses.Exception(StatusCodes.Status400BadRequest, unsupported, "parameters");
        }

        var (status, message) = await ModelRepositoryApi.LoadAsync(request.ModelName, repository, context.CancellationToken);
        return status == StatusCodes.Status200OK
            ? new RepositoryModelLoadResponse()
            : throw GrpcStatuses.Exception(status, message!, "model_name");
    }

    public override async Task<RepositoryModelUnloadResponse> RepositoryModelUnload(RepositoryModelUnloadRequest request, ServerCallContext context)
    {
        RepositoryServed();
        return await repository.UnloadAsync(request.ModelName, context.CancellationToken)
            ? new RepositoryModelUnloadResponse()
            : throw GrpcStatuses.Exception(StatusCodes.Status404NotFound, ModelRepositoryApi.UnknownModel(request.ModelName), "model_name");
    }

    /// <summary>The repository calls change what is served: as on REST, they exist only with API keys (UNIMPLEMENTED otherwise).</summary>
    private void RepositoryServed()
    {
        if (!keys.Enabled)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, ModelRepositoryApi.OffMessage));
        }
    }

    /// <summary>A REST handler's value, or its problem as a gRPC status with the field at fault.</summary>
    private static T ValueOrStatus<T>(IResult result) => result switch
    {
        Ok<T> ok => ok.Value!,
        ProblemHttpResult problem => throw GrpcStatuses.Exception(problem.StatusCode, problem.ProblemDetails.Detail ?? "",
            problem.ProblemDetails.Extensions.TryGetValue("field", out var field) ? field as string : null),
        var other => throw new InvalidOperationException($"Unexpected result {other.GetType().Name}."),
    };

    private static ModelMetadataResponse.Types.TensorMetadata Describe(V2Tensor tensor) =>
        new() { Name = tensor.Name, Datatype = tensor.Datatype, Shape = { tensor.Shape } };
}
