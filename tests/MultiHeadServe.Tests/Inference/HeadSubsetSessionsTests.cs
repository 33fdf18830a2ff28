using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MultiHeadServe.Inference;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Models;
using MultiHeadServe.Onnx;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Inference;

/// <summary>A request for some heads runs the graph pruned to them, with the full graph's outputs.</summary>
public sealed class HeadSubsetSessionsTests
{
    private static readonly SessionSettings Cpu = new() { Provider = ExecutionProvider.Cpu };

    [Fact]
    public void ASubsetRunsAPrunedSessionWithTheFullGraphsOutputs()
    {
        using var sessions = Create(TestModels.TwoHeads);
        var x = TestModels.Input(8, 4, seed: 21);

        var pruned = sessions.For(["box"]);
        var full = sessions.Full.Run("x", x, [8, 4], ["logits", "box"], CancellationToken.None);

        Assert.NotSame(sessions.Full, pruned);
        Assert.Equal(["box"], pruned.Outputs.Select(o => o.Name));
        Assert.Equal(full.Data[1], pruned.Run("x", x, [8, 4], ["box"], CancellationToken.None).Data[0]);
        Assert.Same(pruned, sessions.For(["box"]));
        Assert.Equal(1, sessions.PrunedCount);
    }

    [Fact]
    public void EveryOutputRunsTheFullSession()
    {
        using var sessions = Create(TestModels.TwoHeads);

        Assert.Same(sessions.Full, sessions.For(["logits", "box"]));
        Assert.Same(sessions.Full, sessions.For(["box", "logits"]));
        Assert.Equal(0, sessions.PrunedCount);
    }

    [Fact]
    public void ASubsetKeepingMoreThanTheWeightShareRunsTheFullSession()
    {
        // two_heads holds 35 weights: box's part 20 (57%), logits' part 15 (43%).
        using var sessions = Create(TestModels.TwoHeads, maxWeightShare: 0.5);
        var x = TestModels.Input(8, 4, seed: 22);

        var box = sessions.For(["box"]);
        var logits = sessions.For(["logits"]);

        Assert.Same(sessions.Full, box);
        Assert.NotSame(sessions.Full, logits);
        Assert.Equal(["logits"], logits.Outputs.Select(o => o.Name));
        Assert.Equal(1, sessions.PrunedCount);
        Assert.Equal(
            sessions.Full.Run("x", x, [8, 4], ["logits", "box"], CancellationToken.None).Data[1],
            box.Run("x", x, [8, 4], ["box"], CancellationToken.None).Data[0]);
    }

    [Fact]
    public void TheGraphIsReadAgainOnlyForASubsetThatGetsASessionOfItsOwn()
    {
        var (reads, returns) = (0, 0);
        var graph = new PrunableGraph(() => { reads++; return OnnxModel.Load(TestModels.TwoHeads).Proto; }, AfterRead: () => returns++);
        using var sessions = new HeadSubsetSessions(ModelSession.FromFile(TestModels.TwoHeads, Cpu), graph, Cpu, "x", [4], NullLogger.Instance, maxWeightShare: 0.5);

        // box keeps 57% of the weights: one read, for the plan, and given back.
        Assert.Same(sessions.Full, sessions.For(["box"]));
        Assert.Equal((1, 1), (reads, returns));
        // logits keeps 43%: the plan says so without the graph, which is read again to prune.
        Assert.NotSame(sessions.Full, sessions.For(["logits"]));
        Assert.Equal((2, 2), (reads, returns));

        // With a plan from the caller, a subset that is not worth a session reads nothing.
        var planned = new PrunableGraph(() => throw new InvalidOperationException("read"), PruningPlan.Of(OnnxModel.Load(TestModels.TwoHeads).Proto));
        using var withPlan = new HeadSubsetSessions(ModelSession.FromFile(TestModels.TwoHeads, Cpu), planned, Cpu, "x", [4], NullLogger.Instance, maxWeightShare: 0.5);
        Assert.Same(withPlan.Full, withPlan.For(["box"]));
    }

    [Fact]
    public void WithoutAGraphEverySubsetRunsTheFullSession()
    {
        using var sessions = new HeadSubsetSessions(ModelSession.FromFile(TestModels.TwoHeads, Cpu), null, Cpu, "x", [4], NullLogger.Instance);

        Assert.Same(sessions.Full, sessions.For(["box"]));
    }

    [Fact]
    public async Task OneHeadOfTheFusedRankingModelRunsItsPrunedGraphAndAnswersAsTheWholeDoes()
    {
        var reference = ReferenceData.Load("ranking");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var body = new { instances = reference.Entities.Take(16) };

        var whole = await (await client.PostJsonAsync("/v1/models/ranking/predict", body)).JsonAsync();
        var response = await client.PostJsonAsync("/v1/models/ranking/predict?heads=click", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var one = await response.JsonAsync();
        var model = app.Services.GetRequiredService<ModelRegistry>().All.Single(m => m.Name == "ranking");
        Assert.Equal(1, model.Sessions.PrunedCount);
        for (var r = 0; r < 16; r++)
        {
            Assert.Equal(
                whole.GetProperty("predictions")[r].GetProperty("heads").GetProperty("click").GetProperty("probability").GetDouble(),
                one.GetProperty("predictions")[r].GetProperty("heads").GetProperty("click").GetProperty("probability").GetDouble(), 6);
        }
    }

    [Fact]
    public async Task AMemberFileChangedSinceTheLoadIsNotPrunedUntilTheReloadServesIt()
    {
        using var repository = new TempRepository().With("ranking");
        await using var service = new Repository.ReloadingService(repository);
        var reference = ReferenceData.Load("ranking");
        var body = new { instances = reference.Entities.Take(4) };
        var member = Path.Combine(service.VersionPath("ranking", 1), "click.onnx");
        File.SetLastWriteTimeUtc(member, File.GetLastWriteTimeUtc(member).AddMinutes(1));

        // The graph a pruned session would be made from is read when a subset is first asked for: the files no longer
        // are the ones the served version was made from, so the subset runs on the version's full session.
        using var stale = await service.Client.PostJsonAsync("/v1/models/ranking/predict?heads=click", body);
        Assert.True(service.Registry.TryGetServed("ranking", out var served));
        var before = served.Versions[1];
        await service.PollAsync();
        Assert.True(service.Registry.TryGetServed("ranking", out served));
        using var fresh = await service.Client.PostJsonAsync("/v1/models/ranking/predict?heads=click", body);

        Assert.Equal(HttpStatusCode.OK, stale.StatusCode);
        Assert.Equal(0, before.Sessions.PrunedCount);
        Assert.NotSame(before, served.Versions[1]);
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        Assert.Equal(1, served.Versions[1].Sessions.PrunedCount);
        JsonAssert.SameNumbers((await stale.JsonAsync()).GetProperty("predictions"), (await fresh.JsonAsync()).GetProperty("predictions"), 1e-6);
    }

    private static HeadSubsetSessions Create(string path, double maxWeightShare = HeadSubsetSessions.DefaultMaxWeightShare) =>
        new(ModelSession.FromFile(path, Cpu), new PrunableGraph(() => OnnxModel.Load(path).Proto), Cpu, "x", [4], NullLogger.Instance, maxWeightShare);
}
