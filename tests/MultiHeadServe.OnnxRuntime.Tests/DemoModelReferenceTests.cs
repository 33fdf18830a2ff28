using System.Text.Json;

namespace MultiHeadServe.OnnxRuntime.Tests;

/// <summary>
/// Every committed demo ONNX file, run through this binding, reproduces the outputs PyTorch computed for
/// the same 32 inputs (models/&lt;name&gt;/&lt;version&gt;/reference.json) within 1e-4.
/// </summary>
public sealed class DemoModelReferenceTests
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string, string> ModelFiles() => new()
    {
        { "shapes", "model.onnx" },
        { "ranking", "click.onnx" },
        { "ranking", "dwell.onnx" },
        { "ranking", "revenue.onnx" },
        { "ranking-mtl", "model.onnx" },
    };

    [Theory]
    [MemberData(nameof(ModelFiles))]
    public void OnnxFileReproducesThePyTorchReferenceOutputs(string model, string file)
    {
        var directory = Path.Combine(RepositoryRoot(), "models", model, "1");
        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "reference.json")));
        using var session = InferenceSession.FromFile(Path.Combine(directory, file), new SessionOptions { ExecutionProvider = ExecutionProvider.Cpu });
        var input = Assert.Single(session.Inputs);
        var (data, shape) = model == "shapes" ? ImageTensor(reference.RootElement) : Tensor(reference.RootElement.GetProperty("inputs").GetProperty(input.Name));
        using var value = OrtValue.CreateTensor(data.AsMemory(), shape);

        using var result = session.Run([new(input.Name, value)]);

        var outputs = reference.RootElement.GetProperty("outputs");
        var compared = 0;
        foreach (var output in session.Outputs)
        {
            if (!outputs.TryGetProperty(output.Name, out var expectedTensor))
            {
                continue;
            }

            var (expected, expectedShape) = Tensor(expectedTensor);
            Assert.Equal(expectedShape, result[output.Name].Shape);
            var actual = result[output.Name].GetData<float>();
            for (var i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(expected[i] - actual[i]) <= Tolerance * Math.Max(1, Math.Abs(expected[i])),
                    $"{model}/{file} {output.Name}[{i}] = {actual[i]}, PyTorch gave {expected[i]}");
            }

            compared++;
        }

        Assert.True(compared > 0, $"{file} has no output in reference.json");
    }

    [Fact]
    public void CommittedModelsTotalUnderFiveMegabytes()
    {
        var total = Directory.EnumerateFiles(Path.Combine(RepositoryRoot(), "models"), "*.onnx", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

        Assert.InRange(total, 1, 5L * 1024 * 1024);
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

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "MultiHeadServe.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("MultiHeadServe.sln not found above " + AppContext.BaseDirectory);
    }
}
