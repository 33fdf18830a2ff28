using System.Net;
using Grpc.Core;
using Microsoft.Extensions.Options;
using MultiHeadServe.Api.Grpc;
using MultiHeadServe.Features;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Hardening;

/// <summary>
/// The bodies of all requests in flight share one budget (<c>Serve:MaxBodyBytesInFlight</c>), a JSON body counted with
/// what parsing it costs: a body that can never fit is a 413, one that does not fit now a 429 with Retry-After, small
/// bodies are never counted, and every request gives its share back however it ends.
/// </summary>
public sealed class BodyBudgetTests
{
    [Fact]
    public void SharesAreTakenUntilTheBudgetIsFullAndGivenBack()
    {
        var budget = new BodyBudget(Options.Create(new ServeOptions { MaxBodyBytesInFlight = 1L << 20 }));

        budget.Reserve(600 << 10);
        var full = Assert.Throws<FeatureRequestException>(() => budget.Reserve(600 << 10));
        var never = Assert.Throws<FeatureRequestException>(() => budget.Reserve(2 << 20));
        budget.Release(600 << 10);
        budget.Reserve(600 << 10);

        Assert.Equal(429, full.Status);
        Assert.Equal(TimeSpan.FromSeconds(1), full.RetryAfter);
        Assert.Equal("body", full.Field);
        Assert.Equal(413, never.Status);
        Assert.Equal(600 << 10, budget.Held);
    }

    [Fact]
    public async Task AJsonBodyIsCountedWithItsParseAndRefusedWhileTheBudgetIsHeld()
    {
        // 2 MiB: a 100 KB JSON body counts 1.3 MB (its bytes and its parse); a 400 KB one never fits.
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Serve:MaxBodyBytesInFlight"] = (2 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var client = app.CreateClient();
        var budget = app.Service<BodyBudget>();
        var numbers = "{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,12],\"data\":[" + string.Concat(Enumerable.Repeat("0,", 50_000)) + "0]}]}";

        var tooLarge = await client.PostRawAsync("/v2/models/ranking/infer", string.Concat(Enumerable.Repeat(numbers, 4)));
        // 50,001 values for a shape of 12: it fits the budget, and is then refused for its own mistake.
        var fits = await client.PostRawAsync("/v2/models/ranking/infer", numbers);
        budget.Reserve(1 << 20); // what other requests' bodies would hold
        var refused = await client.PostRawAsync("/v2/models/ranking/infer", numbers);
        var small = await client.PostJsonAsync("/v1/models/ranking/predict", new { user_id = "u0042", item_id = "i0007" });
        var raw = await client.PostRawAsync("/v1/models/ranking/predict", "{\"instances\":[" + string.Join(',', Enumerable.Repeat("{\"features\":[0,0,0,0,0,0,0,0,0,0,0,0]}", 2500)) + "]}");
        budget.Release(1 << 20);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Equal("body", (await tooLarge.JsonAsync()).GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, fits.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
        var problem = await refused.JsonAsync();
        Assert.Equal("body", problem.GetProperty("field").GetString());
        Assert.Contains("Serve:MaxBodyBytesInFlight", problem.GetProperty("error").GetString(), StringComparison.Ordinal);
        // A small body is never counted; a large /v1 JSON body is, as on /v2.
        Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, raw.StatusCode);
        Assert.Equal("application/problem+json", raw.Content.Headers.ContentType?.MediaType);
        // Every request gave its share back, whatever its answer.
        Assert.Equal(0, budget.Held);
    }

    [Fact]
    public async Task AGrpcMessageIsCountedBeforeGrpcReadsItAndAStreamedOneBeforeItRuns()
    {
        // 4 MiB; a message counts three times its size (the framework's buffer, the parsed message, the tensor).
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Serve:MaxBodyBytesInFlight"] = (4 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var channel = OpenInferenceClients.Channel(app);
        var grpc = OpenInferenceClients.Client(channel);
        var budget = app.Service<BodyBudget>();
        ModelInferRequest Request(int bytes) => new()
        {
            Id = $"r-{bytes}",
            ModelName = "ranking",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 12 } } },
            RawInputContents = { Google.Protobuf.ByteString.CopyFrom(new byte[bytes]) },
        };

        // 2 MB: 6 MB counted, more than all of it.
        var never = await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelInferAsync(Request(2_000_000)));
        Assert.Equal(StatusCode.ResourceExhausted, never.StatusCode);
        // 400 KB: 1.2 MB counted; it fits, and gRPC then reads it and finds its size wrong for the shape.
        var fits = await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelInferAsync(Request(400_000)));
        Assert.Equal(StatusCode.InvalidArgument, fits.StatusCode);

        // While the budget is held elsewhere it does not fit now: UNAVAILABLE, try again.
        budget.Reserve(7 << 19); // 3.5 MiB: a streamed 400 KB message (0.8 MB counted once read) does not fit either
        var notNow = await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelInferAsync(Request(400_000)));
        Assert.Equal(StatusCode.Unavailable, notNow.StatusCode);
        Assert.Contains("Serve:MaxBodyBytesInFlight", notNow.Status.Detail, StringComparison.Ordinal);
        using (var call = grpc.ModelStreamInfer())
        {
            await call.RequestStream.WriteAsync(Request(400_000));
            await call.RequestStream.WriteAsync(Request(48));
            await call.RequestStream.CompleteAsync();
            var answers = (await call.ResponseStream.ReadAllAsync().ToListAsync()).ToDictionary(a => a.InferResponse.Id, StringComparer.Ordinal);
            Assert.Contains("Serve:MaxBodyBytesInFlight", answers["r-400000"].ErrorMessage, StringComparison.Ordinal);
            Assert.Equal("", answers["r-48"].ErrorMessage); // a small request is not counted and runs
        }

        budget.Release(7 << 19);
        Assert.Equal(0, budget.Held);
    }
}
