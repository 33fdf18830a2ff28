using System.Text.Json;
using System.Text.RegularExpressions;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Inference.Engine;

/// <summary>
/// The service built with -p:OnnxRuntimeGpu=true (ONNX Runtime's CUDA package), started as its own process. .ci/run
/// builds it and names its MultiHeadServe.dll in MHS_GPU_BUILD; elsewhere these tests are skipped.
/// </summary>
public sealed partial class GpuBuildTests
{
    private const string Variable = "MHS_GPU_BUILD";

    private static readonly object RankingRow = new { user_id = "u0042", item_id = "i0007" };

    private static string GpuBuild => Environment.GetEnvironmentVariable(Variable)!;

    private static Dictionary<string, string> Provider(string provider) => new() { ["ModelRepository__Provider"] = provider };

    [GpuBuildFact]
    public async Task AutoServesTheCpuBuildsPredictionsWithOneWarningNamingWhyCudaIsNotUsed()
    {
        await using var gpu = await ServiceProcess.StartAsync(GpuBuild, Path.GetDirectoryName(GpuBuild)!, Provider("Auto"));
        await using var cpu = new ServeFactory();
        using var cpuClient = cpu.CreateClient();
        var image = ReferenceData.Load("shapes").Images[0];

        foreach (var (model, body) in new[] { ("shapes", (object)new { image }), ("ranking", RankingRow) })
        {
            var expected = await (await cpuClient.PostJsonAsync($"/v1/models/{model}/predict", body)).JsonAsync();
            var actual = await (await gpu.Client.PostJsonAsync($"/v1/models/{model}/predict", body)).JsonAsync();
            JsonAssert.SameNumbers(expected.GetProperty("heads"), actual.GetProperty("heads"), 1e-5, model);
        }

        var models = await (await gpu.Client.GetAsync("/v1/models")).JsonAsync();
        var providers = models.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("executionProvider").GetString()).Distinct().ToList();
        var cudaWarnings = gpu.Output.Where(line => line.Contains("WRN]", StringComparison.Ordinal) && line.Contains("CUDA", StringComparison.Ordinal)).ToList();
        if (providers.SequenceEqual(["CUDAExecutionProvider"]))
        {
            Assert.Empty(cudaWarnings);
            return;
        }

        Assert.Equal(["CPUExecutionProvider"], providers);
        var warning = Assert.Single(cudaWarnings);
        Assert.Matches(MissingLibrary(), warning);
    }

    [GpuBuildFact]
    public async Task CudaRefusesToStartWithTheReasonWhereCudaCannotRun()
    {
        var (exitCode, output) = await ServiceProcess.RunUntilExitAsync(GpuBuild, Provider("Cuda"), TimeSpan.FromSeconds(60));

        if (exitCode is null)
        {
            // It started: then this host runs CUDA, and every model must be on it.
            Assert.DoesNotContain(output, line => line.Contains("CPUExecutionProvider", StringComparison.Ordinal));
            return;
        }

        Assert.NotEqual(0, exitCode);
        var text = string.Join('\n', output);
        Assert.Contains("ExecutionProvider=Cuda", text, StringComparison.Ordinal);
        Assert.Matches(MissingLibrary(), text);
    }

    /// <summary>The fallback reason names the library the CUDA provider could not find.</summary>
    [GeneratedRegex(@"lib[\w.+-]+\.so(\.\d+)* is missing")]
    private static partial Regex MissingLibrary();

    /// <summary>Skipped unless .ci/run (or a developer) built the GPU variant and named it in MHS_GPU_BUILD.</summary>
    public sealed class GpuBuildFactAttribute : FactAttribute
    {
        public GpuBuildFactAttribute()
        {
            var path = Environment.GetEnvironmentVariable(Variable);
            if (string.IsNullOrEmpty(path) || !File.Exists(path))
            {
                Skip = $"{Variable} does not name the GPU build's MultiHeadServe.dll (dotnet build src/MultiHeadServe -p:OnnxRuntimeGpu=true; .ci/run does it).";
            }
        }
    }
}
