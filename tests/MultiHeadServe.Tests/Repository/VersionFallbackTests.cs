using System.Net;
using MultiHeadServe.Models;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Repository;

/// <summary>A newest version that cannot be served never takes the model, or the service, down.</summary>
public sealed class VersionFallbackTests
{
    [Fact]
    public async Task ACorruptNewestVersionServesThePreviousOneAndReportsTheFailure()
    {
        using var repository = new TempRepository().With("shapes").With("ranking");
        var broken = Directory.CreateDirectory(Path.Combine(repository.Path, "shapes", "2"));
        var original = await File.ReadAllBytesAsync(Path.Combine(repository.Path, "shapes", "1", "model.onnx"));
        await File.WriteAllBytesAsync(Path.Combine(broken.FullName, "model.onnx"), original.AsSpan(0, original.Length / 3).ToArray());
        await using var app = new ServeFactory(repository.Settings());
        using var client = app.CreateClient();

        var shapes = await (await client.GetAsync("/v1/models/shapes")).JsonAsync();
        var predict = await client.PostJsonAsync("/v1/models/shapes/predict", new { image = ReferenceData.Load("shapes").Images[0] });
        var ranking = await client.PostJsonAsync("/v1/models/ranking/predict", new { user_id = "u0042", item_id = "i0007" });
        var metrics = await client.GetStringAsync("/metrics");

        var summary = shapes.GetProperty("model");
        Assert.Equal(1, summary.GetProperty("version").GetInt32());
        Assert.Equal([1, 2], summary.GetProperty("versions").EnumerateArray().Select(v => v.GetInt32()));
        var failure = Assert.Single(summary.GetProperty("failedVersions").EnumerateArray());
        Assert.Equal(2, failure.GetProperty("version").GetInt32());
        Assert.Contains("ONNX Runtime cannot load the model", failure.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, predict.StatusCode);
        Assert.Equal(1, (await predict.JsonAsync()).GetProperty("version").GetInt32());
        Assert.Equal(HttpStatusCode.OK, ranking.StatusCode);
        // At least: OpenTelemetry also sees the meters of other tests' apps in this process.
        // Several apps' meters of one name can each be a series: any of them counting the failure will do.
        var failed = metrics.Split('\n').Where(l => l.StartsWith("mhs_model_loads_total{", StringComparison.Ordinal) && l.Contains("model=\"shapes\",outcome=\"failed\"", StringComparison.Ordinal)).ToList();
        Assert.Contains(failed, line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture) >= 1);
    }

    [Fact]
    public async Task WhenNoVersionCanBeServedStartUpStopsWithTheNewestReason()
    {
        using var repository = new TempRepository().With("shapes");
        var versionOne = Path.Combine(repository.Path, "shapes", "1", "model.onnx");
        Directory.CreateDirectory(Path.Combine(repository.Path, "shapes", "2"));
        await File.WriteAllBytesAsync(Path.Combine(repository.Path, "shapes", "2", "model.onnx"), [1, 2, 3]);
        await File.WriteAllBytesAsync(versionOne, [4, 5, 6]);
        await using var app = new ServeFactory(repository.Settings());

        var error = Assert.Throws<ManifestException>(() => app.CreateClient());

        Assert.Equal("versions", error.Field);
        Assert.StartsWith("no version can be served; version 2:", error.Reason, StringComparison.Ordinal);
    }
}
