using System.Text.Json;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>A demo model's reference.json: inputs and the training framework's outputs for the same rows.</summary>
internal sealed class ReferenceData
{
    private readonly JsonElement _root;

    private ReferenceData(JsonElement root, JsonElement manifest)
    {
        _root = root;
        Manifest = manifest;
    }

    public JsonElement Manifest { get; }

    public static ReferenceData Load(string model)
    {
        var directory = RepositoryPaths.Model(model);
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "model.json"))).RootElement;
        var version = Directory.EnumerateDirectories(directory).Select(Path.GetFileName).Where(n => int.TryParse(n, out _)).Select(int.Parse!).Max();
        var root = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, version.ToString(System.Globalization.CultureInfo.InvariantCulture), "reference.json"))).RootElement;
        return new ReferenceData(root, manifest);
    }

    public int Rows => Output(OutputNames()[0]).Shape[0];

    public IReadOnlyList<string> OutputNames() => _root.GetProperty("outputs").EnumerateObject().Select(p => p.Name).ToList();

    public (int[] Shape, float[] Data) Output(string name) => Tensor(_root.GetProperty("outputs").GetProperty(name));

    public (int[] Shape, float[] Data) Input(string name) => Tensor(_root.GetProperty("inputs").GetProperty(name));

    public IReadOnlyList<string> Images => _root.GetProperty("images").EnumerateArray().Select(e => e.GetString()!).ToList();

    public IReadOnlyList<Dictionary<string, string>> Entities => _root.GetProperty("entities").EnumerateArray()
        .Select(e => e.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText()))
        .ToList();

    /// <summary>Row <paramref name="row"/> of an output, flattened.</summary>
    public float[] OutputRow(string name, int row)
    {
        var (shape, data) = Output(name);
        var width = data.Length / shape[0];
        return data.AsSpan(row * width, width).ToArray();
    }

    public float[] InputRow(string name, int row)
    {
        var (shape, data) = Input(name);
        var width = data.Length / shape[0];
        return data.AsSpan(row * width, width).ToArray();
    }

    /// <summary>The manifest's head entry with this name.</summary>
    public JsonElement Head(string name) => Manifest.GetProperty("heads").EnumerateArray().First(h => h.GetProperty("name").GetString() == name);

    public float HeadNumber(string head, string property, float fallback) =>
        Head(head).TryGetProperty(property, out var value) ? value.GetSingle() : fallback;

    private static (int[] Shape, float[] Data) Tensor(JsonElement tensor) => (
        tensor.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray(),
        tensor.GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray());
}
