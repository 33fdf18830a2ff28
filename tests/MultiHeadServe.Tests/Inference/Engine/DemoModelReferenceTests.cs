using System.Text.Json;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Inference.Engine;

/// <summary>
/// Every committed demo ONNX file, run through the engine, reproduces the outputs PyTorch computed for the same
/// inputs (models/&lt;name&gt;/&lt;version&gt;/reference.json) within 1e-4; on a CUDA host, CUDA gives CPU's outputs within 1e-3.
/// </summary>
public sealed class DemoModelReferenceTests
{
    public static TheoryData<string, string> ModelFiles() => new()
    {
        { "shapes", "model.onnx" },
        { "ranking", "click.onnx" },
        { "ranking", "dwell.onnx" },
        { "ranking", "revenue.onnx" },
        { "ranking-mtl", "model.onnx" },
        { "conversion", "model.onnx" },
    };

    [Theory]
    [MemberData(nameof(ModelFiles))]
    public void OnnxFileReproducesThePyTorchReferenceOutputs(string model, string file)
    {
        var (reference, session) = Open(model, file, ExecutionProvider.Cpu);
        using (reference)
        using (session)
        {
            var outputs = reference.RootElement.GetProperty("outputs");
            var compared = 0;
            foreach (var (name, actual) in Run(model, reference, session))
            {
                if (outputs.TryGetProperty(name, out var expectedTensor))
                {
                    var (expected, expectedShape) = Tensor(expectedTensor);
                    Assert.Equal(expectedShape, actual.Shape);
                    AssertWithin(expected, actual.Data, 1e-4, $"{model}/{file} {name}");
                    compared++;
                }
            }

            Assert.True(compared > 0, $"{file} has no output in reference.json");
        }
    }

    [CudaTheory]
    [MemberData(nameof(ModelFiles))]
    public void CudaGivesTheCpuOutputs(string model, string file)
    {
        var (reference, cpu) = Open(model, file, ExecutionProvider.Cpu);
        var (_, cuda) = Open(model, file, ExecutionProvider.Cuda);
        using (reference)
        using (cpu)
        using (cuda)
        {
            Assert.Equal("CUDAExecutionProvider", cuda.ExecutionProvider);
            var expected = Run(model, reference, cpu);
            var actual = Run(model, reference, cuda);
            foreach (var (name, tensor) in expected)
            {
                AssertWithin(tensor.Data, actual[name].Data, 1e-3, $"{model}/{file} {name} on CUDA");
            }
        }
    }

    [Fact]
    public void CommittedModelsTotalUnderFiveMegabytes()
    {
        // What git tracks: the objects model's members (each a 64 MB backbone plus a head) are made by the build.
        var start = new System.Diagnostics.ProcessStartInfo("git", ["-C", RepositoryPaths.Root, "ls-files", "-z", "--", "models/*.onnx"])
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        using var git = System.Diagnostics.Process.Start(start)!;
        var files = git.StandardOutput.ReadToEnd().Split('\0', StringSplitOptions.RemoveEmptyEntries);
        git.WaitForExit();
        Assert.Equal(0, git.ExitCode);

        var total = files.Sum(f => new FileInfo(Path.Combine(RepositoryPaths.Root, f)).Length);

        Assert.NotEmpty(files);
        Assert.InRange(total, 1, 5L * 1024 * 1024);
    }

    private static (JsonDocument Reference, ModelSession Session) Open(string model, string file, ExecutionProvider provider)
    {
        var directory = Path.Combine(RepositoryPaths.Model(model), "1");
        var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "reference.json")));
        return (reference, ModelSession.FromFile(Path.Combine(directory, file), new SessionSettings { Provider = provider }));
    }

    private static Dictionary<string, (float[] Data, long[] Shape)> Run(string model, JsonDocument reference, ModelSession session)
    {
        var input = Assert.Single(session.Inputs);
        var (data, shape) = model == "shapes" ? ImageTensor(reference.RootElement) : Tensor(reference.RootElement.GetProperty("inputs").GetProperty(input.Name));
        var names = session.Outputs.Select(o => o.Name).ToList();
        var result = session.Run(input.Name, data, shape, names, CancellationToken.None);
        return names.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => (result.Data[p.i], result.Shapes[p.i]), StringComparer.Ordinal);
    }

    private static void AssertWithin(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])), $"{what}[{i}] = {actual[i]}, expected {expected[i]}");
        }
    }

    /// <summary>Rebuilds the shapes input from the raw RGB pixels: NCHW, pixel/255, then (v - 0.5) / 0.5, as the manifest says.</summary>
    private static (float[] Data, long[] Shape) ImageTensor(JsonElement reference)
    {
        var images = reference.GetProperty("pixels").GetProperty("data").EnumerateArray().Select(p => Convert.FromBase64String(p.GetString()!)).ToList();
        const int Side = 64;
        var data = new float[images.Count * 3 * Side * Side];
        for (var n = 0; n < images.Count; n++)
        {
            Assert.Equal(Side * Side * 3, images[n].Length);
            for (var p = 0; p < Side * Side; p++)
            {
                for (var c = 0; c < 3; c++)
                {
                    data[(n * 3 * Side * Side) + (c * Side * Side) + p] = ((images[n][(p * 3) + c] / 255f) - 0.5f) / 0.5f;
                }
            }
        }

        return (data, [images.Count, 3, Side, Side]);
    }

    private static (float[] Data, long[] Shape) Tensor(JsonElement tensor) => (
        tensor.GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray(),
        tensor.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()).ToArray());
}
