using System.Text.Json.Nodes;
using MultiHeadServe.Models;
using MultiHeadServe.Tests.Inference.Engine;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Repository;

/// <summary>A manifest that cannot be served stops start-up with the file, the field and the reason.</summary>
public sealed class ManifestValidationTests
{
    public static TheoryData<string, string, string> BrokenManifests() => new()
    {
        { "heads[1].output", "'boxes' is not an output of the model", """{"op":"set","path":"heads.1.output","value":"boxes"}""" },
        { "heads[0].kind", "'classifier' is not one of", """{"op":"set","path":"heads.0.kind","value":"classifier"}""" },
        { "heads[0].activation", "'relu' is not one of none, softmax, sigmoid.", """{"op":"set","path":"heads.0.activation","value":"relu"}""" },
        { "heads[1].boxFormat", "'ltrb' is not one of xyxy, xywh, cxcywh.", """{"op":"set","path":"heads.1.boxFormat","value":"ltrb"}""" },
        { "features.source", "'images' is not one of image, store, inline.", """{"op":"set","path":"features.source","value":"images"}""" },
        { "heads[0].labels", "'missing.txt' does not exist", """{"op":"set","path":"heads.0.labels","value":"missing.txt"}""" },
        { "inputs[0].dataType", "'int64' but the model's input 'image' is float32", """{"op":"set","path":"inputs.0.dataType","value":"int64"}""" },
        { "features.image", "does not match the input shape", """{"op":"set","path":"features.image.width","value":32}""" },
        { "name", "must equal the folder name", """{"op":"set","path":"name","value":"other"}""" },
        { "headz", "could not be mapped", """{"op":"set","path":"headz","value":[]}""" },
        { "intraOpThreads", "is not between 0 (one per core) and 256", """{"op":"set","path":"intraOpThreads","value":-1}""" },
        { "batching.preferredBatchSizes", "between 1 and maxBatchSize", """{"op":"set","path":"batching.preferredBatchSizes","value":[64]}""" },
        { "batching.maxQueueDelayMicroseconds", "1000000 is not shorter than queueTimeoutMicroseconds (1000000)", """{"op":"set","path":"batching.maxQueueDelayMicroseconds","value":1000000}""" },
        { "batching.queueTimeoutMicroseconds", "must not be negative", """{"op":"set","path":"batching.queueTimeoutMicroseconds","value":-1}""" },
    };

    [Theory]
    [MemberData(nameof(BrokenManifests))]
    public async Task ABadManifestStopsStartUpNamingFileFieldAndReason(string field, string reason, string edit)
    {
        using var repository = new TempRepository().With("shapes", manifest => Apply(manifest, JsonNode.Parse(edit)!.AsObject()));
        await using var app = new ServeFactory(repository.Settings());

        var error = Assert.Throws<ManifestException>(() => app.CreateClient());

        Assert.Equal(Path.Combine("shapes", "model.json"), error.File);
        Assert.Equal(field, error.Field);
        Assert.Contains(reason, error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingMemberFileStopsStartUp()
    {
        using var repository = new TempRepository().With("ranking", manifest => manifest["members"] = new JsonArray("click.onnx", "ctr.onnx"));
        await using var app = new ServeFactory(repository.Settings());

        var error = Assert.Throws<ManifestException>(() => app.CreateClient());

        Assert.Equal("members[1]", error.Field);
    }

    [Fact]
    public async Task CudaRequiredStopsStartUpWithTheReasonWhereCudaCannotRun()
    {
        // The service-wide setting applies to manifests that do not choose a provider themselves.
        using var repository = new TempRepository().With("shapes", manifest => manifest.Remove("provider"));
        await using var app = new ServeFactory(repository.Settings(("ModelRepository:Provider", "Cuda")));

        await AssertCudaOrItsReasonAsync(app, "shapes");
    }

    [Fact]
    public async Task AManifestRequiringCudaStopsStartUpTooWhereCudaCannotRun()
    {
        using var repository = new TempRepository().With("ranking", manifest => manifest["provider"] = "cuda");
        await using var app = new ServeFactory(repository.Settings());

        await AssertCudaOrItsReasonAsync(app, "ranking");
    }

    [Fact]
    public async Task AutoServesOnCudaOrFallsBackToCpu()
    {
        using var repository = new TempRepository().With("shapes", manifest => manifest.Remove("provider"));
        await using var app = new ServeFactory(repository.Settings(("ModelRepository:Provider", "Auto")));
        using var client = app.CreateClient();

        var models = await (await client.GetAsync("/v1/models")).JsonAsync();

        var expected = CudaDevice.UnavailableReason is null ? "CUDAExecutionProvider" : "CPUExecutionProvider";
        Assert.Equal(expected, models.GetProperty("models")[0].GetProperty("executionProvider").GetString());
    }

    /// <summary>Where CUDA can run, the model starts on it; where it cannot, start-up stops naming the provider and why.</summary>
    private static async Task AssertCudaOrItsReasonAsync(ServeFactory app, string model)
    {
        if (CudaDevice.UnavailableReason is { } reason)
        {
            var error = Assert.Throws<ManifestException>(() => app.CreateClient());
            Assert.Equal("provider", error.Field);
            Assert.Equal(reason, error.Reason);
            return;
        }

        using var client = app.CreateClient();
        var description = await (await client.GetAsync($"/v1/models/{model}")).JsonAsync();
        Assert.Equal("CUDAExecutionProvider", description.GetProperty("executionProvider").GetString());
    }

    private static void Apply(JsonObject manifest, JsonObject edit)
    {
        var path = edit["path"]!.GetValue<string>().Split('.');
        JsonNode node = manifest;
        foreach (var part in path[..^1])
        {
            node = int.TryParse(part, out var index) ? node[index]! : node[part]!;
        }

        var last = path[^1];
        var value = edit["value"]!.DeepClone();
        if (int.TryParse(last, out var i))
        {
            node[i] = value;
        }
        else
        {
            node[last] = value;
        }
    }
}
