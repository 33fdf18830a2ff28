using System.Net;
using Grpc.Core;
using Grpc.Health.V1;
using MultiHeadServe.Api;
using MultiHeadServe.Tests.Infrastructure;
using static MultiHeadServe.Tests.Infrastructure.OpenInferenceClients;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace MultiHeadServe.Tests.Api.Grpc;

/// <summary>
/// gRPC's health-checking protocol, as Kubernetes' gRPC probes, grpc-health-probe and gRPC's client-side health checks
/// call it: the same answers as <c>/healthz</c> and <c>/readyz</c>, under the service names the README gives.
/// </summary>
public sealed class GrpcHealthCheckTests
{
    private static readonly string[] ReadinessNames = ["", "readiness", "inference.GRPCInferenceService"];

    [Fact]
    public async Task EveryServiceNameAnswersAsTheHttpProbeItStandsFor()
    {
        await using var app = new ServeFactory();
        using var channel = Channel(app);
        var health = new Health.HealthClient(channel);

        foreach (var name in ReadinessNames.Append("liveness"))
        {
            Assert.Equal(ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest { Service = name })).Status);
        }

        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await health.CheckAsync(new HealthCheckRequest { Service = "ranking" }));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);

        // Watch begins with the status now (then streams changes); the client ends it.
        using var watching = new CancellationTokenSource();
        using var watch = health.Watch(new HealthCheckRequest { Service = "" }, cancellationToken: watching.Token);
        Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(ServingStatus.Serving, watch.ResponseStream.Current.Status);
        await watching.CancelAsync();
    }

    [Fact]
    public async Task WhileTheServiceDrainsReadinessIsNotServingAndLivenessStillServes()
    {
        // No drain delay: readiness stays off once the stop has begun, and disposing the app does not wait.
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Serve:ShutdownDrainSeconds"] = "0" });
        using var channel = Channel(app);
        var health = new Health.HealthClient(channel);
        using var client = app.CreateClient();
        Assert.Equal(ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);

        // What SIGTERM begins: readiness turns off while requests are still served.
        await app.Service<ShutdownDrain>().StoppingAsync(CancellationToken.None);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.GetAsync("/readyz")).StatusCode);
        foreach (var name in ReadinessNames)
        {
            Assert.Equal(ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest { Service = name })).Status);
        }

        Assert.Equal(ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest { Service = "liveness" })).Status);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
    }

    [Theory]
    [InlineData(false, StatusCode.OK)]
    [InlineData(true, StatusCode.Unauthenticated)]
    public async Task WithApiKeysTheHealthServiceIsOpenLikeTheHttpProbesUnlessThoseAreProtected(bool protectOperational, StatusCode withoutKey)
    {
        await using var app = new ServeFactory(new Dictionary<string, string?>
        {
            ["Security:ApiKeys:0"] = "s3cret",
            ["Security:ProtectOperationalEndpoints"] = protectOperational ? "true" : "false",
        });
        using var channel = Channel(app);
        var health = new Health.HealthClient(channel);
        using var client = app.CreateClient();

        var status = StatusCode.OK;
        try
        {
            Assert.Equal(ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        }
        catch (RpcException ex)
        {
            status = ex.StatusCode;
        }

        Assert.Equal(withoutKey, status);
        Assert.Equal(protectOperational ? HttpStatusCode.Unauthorized : HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);
        // The inference service itself always needs the key.
        var live = await Assert.ThrowsAsync<RpcException>(async () => await Client(channel).ServerLiveAsync(new MultiHeadServe.Api.Grpc.ServerLiveRequest()));
        Assert.Equal(StatusCode.Unauthenticated, live.StatusCode);
        Assert.Equal(ServingStatus.Serving,
            (await health.CheckAsync(new HealthCheckRequest(), new Metadata { { "authorization", "Bearer s3cret" } })).Status);
    }
}
