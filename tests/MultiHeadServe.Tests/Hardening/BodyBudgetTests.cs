using System.Net;
using System.Net.Http.Headers;
using System.Text;
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
    public async Task AJsonBodyIsCountedWithItsParseAndRefusedWhileAnotherHoldsTheBudget()
    {
        // A process of its own: the in-memory test server hands a body to the app only once it is complete, and this is
        // about bodies still arriving. 2 MiB: a 100 KB JSON body counts 1.3 MB (its bytes and its parse), so one fits
        // and two do not; a 400 KB one never does.
        await using var service = await ServiceProcess.StartAsync(ServiceProcess.BuiltService, RepositoryPaths.Root, new Dictionary<string, string>
        {
            ["Serve__MaxBodyBytesInFlight"] = (2 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ModelRepository__Only__0"] = "ranking",
            ["FeatureStore__TimeoutMilliseconds"] = "5000",
        });
        var client = service.Client;
        var numbers = "{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,12],\"data\":[" + string.Concat(Enumerable.Repeat("0,", 50_000)) + "0]}]}";

        // A body that can never fit with its parse: 413 at once.
        var tooLarge = await client.PostRawAsync("/v2/models/ranking/infer", string.Concat(Enumerable.Repeat(numbers, 4)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Equal("body", (await tooLarge.JsonAsync()).GetProperty("field").GetString());

        // A slow client holds its share while it sends: another large JSON body waits for it (429), a small one does not.
        var slow = new SlowContent(Encoding.UTF8.GetBytes(numbers));
        var held = client.PostAsync("/v2/models/ranking/infer", slow);
        await slow.Started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        HttpResponseMessage refused;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((refused = await client.PostRawAsync("/v2/models/ranking/infer", numbers)).StatusCode != HttpStatusCode.TooManyRequests)
        {
            // Until the service has read the slow request's head, the second one fits (and is refused for its shape).
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.True(DateTime.UtcNow < deadline, "A second large body was never refused while the first held the budget.");
            await Task.Delay(50);
        }

        var small = await client.PostJsonAsync("/v1/models/ranking/predict", new { user_id = "u0042", item_id = "i0007" });
        slow.Finish();
        var first = await held;

        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
        var problem = await refused.JsonAsync();
        Assert.Equal("body", problem.GetProperty("field").GetString());
        Assert.Contains("Serve:MaxBodyBytesInFlight", problem.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        // 50,001 values for a shape of 12: the first request's own mistake, answered once its body was read.
        Assert.Equal(HttpStatusCode.BadRequest, first.StatusCode);

        // Its share came back with its answer: the same body fits again.
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostRawAsync("/v2/models/ranking/infer", numbers)).StatusCode);
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

    /// <summary>
    /// A JSON body that sends its first 70,000 bytes, then waits until <see cref="Finish"/> to send the rest: past the
    /// uncounted 64 KiB whether or not the server was told its length.
    /// </summary>
    private sealed class SlowContent : HttpContent
    {
        private const int FirstBytes = 70_000;

        private readonly byte[] _bytes;
        private readonly TaskCompletionSource _finish = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SlowContent(byte[] bytes)
        {
            _bytes = bytes;
            Headers.ContentType = new MediaTypeHeaderValue("application/json");
            Headers.ContentLength = bytes.Length;
        }

        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Finish() => _finish.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(_bytes.AsMemory(0, FirstBytes));
            await stream.FlushAsync();
            Started.TrySetResult();
            await _finish.Task;
            await stream.WriteAsync(_bytes.AsMemory(FirstBytes));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _bytes.Length;
            return true;
        }
    }
}
