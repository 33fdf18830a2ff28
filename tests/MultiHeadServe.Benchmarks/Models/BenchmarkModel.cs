using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MultiHeadServe.Benchmarks.Models;

/// <summary>One served head: the name clients see and the ONNX output it reads.</summary>
internal sealed record ServedHead(string Name, string Output);

/// <summary>
/// A model of the repository as the benchmark uses it: its manifest (kept as JSON so the variants the run
/// serves are edits of the real file), the version it serves, and the request bodies a client would send,
/// taken from the version's reference.json (and, for store models, more keys from the feature CSVs).
/// </summary>
internal sealed class BenchmarkModel
{
    private const int StoreBodyCount = 256;

    private readonly JsonObject _manifest;
    private readonly JsonObject _reference;

    private BenchmarkModel(string name, string directory, int version, JsonObject manifest, JsonObject reference)
    {
        Name = name;
        Directory = directory;
        Version = version;
        _manifest = manifest;
        _reference = reference;
        var features = manifest["features"]?.AsObject() ?? throw Invalid("features", "is missing");
        FeatureSource = features["source"]?.GetValue<string>() ?? throw Invalid("features.source", "is missing");
        FeatureInput = features["input"]?.GetValue<string>() ?? throw Invalid("features.input", "is missing");
        Members = manifest["members"] is JsonArray members ? [.. members.Select(m => m!.GetValue<string>())] : [];
        ServedHeads = [.. (manifest["heads"]?.AsArray() ?? throw Invalid("heads", "is missing"))
            .Select(h => h!.AsObject())
            .Where(h => h["served"]?.GetValue<bool>() ?? true)
            .Select(h => new ServedHead(h["name"]!.GetValue<string>(), h["output"]!.GetValue<string>()))];
        var batching = manifest["batching"]?.AsObject();
        BatchingEnabled = batching?["enabled"]?.GetValue<bool>() ?? true;
        MaxQueueDelayMicroseconds = batching?["maxQueueDelayMicroseconds"]?.GetValue<int>() ?? 2000;
        MaxBatchSize = batching?["maxBatchSize"]?.GetValue<int>() ?? 32;
        Bodies = BuildBodies();
    }

    public string Name { get; }

    /// <summary>The model's folder in the source repository.</summary>
    public string Directory { get; }

    /// <summary>The version served (the highest numeric folder).</summary>
    public int Version { get; }

    public string VersionDirectory => Path.Combine(Directory, Version.ToString(CultureInfo.InvariantCulture));

    /// <summary>image | store | inline.</summary>
    public string FeatureSource { get; }

    public string FeatureInput { get; }

    /// <summary>The member files fused at load, or empty for a single model.onnx.</summary>
    public IReadOnlyList<string> Members { get; }

    public IReadOnlyList<ServedHead> ServedHeads { get; }

    public bool BatchingEnabled { get; }

    public int MaxQueueDelayMicroseconds { get; }

    public int MaxBatchSize { get; }

    /// <summary>Serialized predict bodies, one row each; clients cycle through them.</summary>
    public IReadOnlyList<byte[]> Bodies { get; }

    /// <summary>A fresh, editable copy of the manifest.</summary>
    public JsonObject ManifestCopy() => _manifest.DeepClone().AsObject();

    /// <summary>Reads <c>&lt;modelsDirectory&gt;/&lt;name&gt;</c>.</summary>
    /// <exception cref="InvalidOperationException">The model, its manifest or its reference file is missing or unusable.</exception>
    public static BenchmarkModel Load(string modelsDirectory, string name)
    {
        var directory = Path.Combine(modelsDirectory, name);
        var manifestPath = Path.Combine(directory, "model.json");
        if (!File.Exists(manifestPath))
        {
            throw new InvalidOperationException($"No model '{name}' in {modelsDirectory}: {Path.Combine(name, "model.json")} does not exist.");
        }

        var version = System.IO.Directory.EnumerateDirectories(directory)
            .Select(d => int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1)
            .DefaultIfEmpty(-1)
            .Max();
        if (version < 1)
        {
            throw new InvalidOperationException($"Model '{name}' has no numeric version folder.");
        }

        var referencePath = Path.Combine(directory, version.ToString(CultureInfo.InvariantCulture), "reference.json");
        if (!File.Exists(referencePath))
        {
            throw new InvalidOperationException($"Model '{name}' has no reference.json in version {version}: the benchmark takes its request bodies from it.");
        }

        var documentOptions = new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath), documentOptions: documentOptions)!.AsObject();
        var reference = JsonNode.Parse(File.ReadAllText(referencePath), documentOptions: documentOptions)!.AsObject();
        return new BenchmarkModel(name, directory, version, manifest, reference);
    }

    /// <summary>
    /// Input rows for the raw engine: the reference inputs when the file carries them for this input, otherwise a
    /// fixed pseudo-random pattern (a dense network's cost does not depend on the values it multiplies).
    /// </summary>
    public float[] ReferenceRows(int rowLength)
    {
        if (_reference["inputs"]?[FeatureInput]?["data"] is JsonArray data && data.Count >= rowLength && data.Count % rowLength == 0)
        {
            return [.. data.Select(v => v!.GetValue<float>())];
        }

        var random = new Random(23);
        var rows = new float[rowLength * 32];
        for (var i = 0; i < rows.Length; i++)
        {
            rows[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return rows;
    }

    private List<byte[]> BuildBodies()
    {
        var bodies = FeatureSource switch
        {
            "image" => ImageBodies(),
            "store" => StoreBodies(),
            _ => InlineBodies(),
        };
        return bodies.Count > 0
            ? bodies
            : throw new InvalidOperationException($"Model '{Name}': reference.json gives no request bodies for a {FeatureSource} model " +
                "(images for image models, entities for store models, inputs for inline models).");
    }

    private List<byte[]> ImageBodies() =>
        [.. (_reference["images"] as JsonArray ?? []).Select(image => Serialize(new JsonObject { ["image"] = image!.GetValue<string>() }))];

    /// <summary>The reference entities, then random combinations of the keys the feature CSVs seed (a fixed seed, so every run sends the same).</summary>
    private List<byte[]> StoreBodies()
    {
        var bodies = (_reference["entities"] as JsonArray ?? []).Select(e => Serialize(e!.DeepClone().AsObject())).ToList();
        var entities = _manifest["features"]?["entities"] as JsonArray ?? [];
        var keysPerEntity = entities
            .Select(e => (Key: e!["key"]!.GetValue<string>(), Keys: CsvKeys(e["table"]!.GetValue<string>())))
            .ToList();
        if (keysPerEntity.Count == 0 || keysPerEntity.Any(e => e.Keys.Count == 0))
        {
            return bodies;
        }

        var random = new Random(17);
        while (bodies.Count < StoreBodyCount)
        {
            var row = new JsonObject();
            foreach (var (key, keys) in keysPerEntity)
            {
                row[key] = keys[random.Next(keys.Count)];
            }

            bodies.Add(Serialize(row));
        }

        return bodies;
    }

    private List<string> CsvKeys(string table)
    {
        var path = Path.Combine(Directory, "features", table + ".csv");
        return File.Exists(path)
            ? [.. File.ReadLines(path).Skip(1).Select(line => line.Split(',', 2)[0].Trim()).Where(key => key.Length > 0)]
            : [];
    }

    private List<byte[]> InlineBodies()
    {
        var input = _reference["inputs"]?[FeatureInput];
        if (input?["shape"] is not JsonArray { Count: 2 } shape || input["data"] is not JsonArray data)
        {
            return [];
        }

        var rows = shape[0]!.GetValue<int>();
        var columns = shape[1]!.GetValue<int>();
        return [.. Enumerable.Range(0, rows).Select(r =>
            Serialize(new JsonObject { ["features"] = new JsonArray([.. data.Skip(r * columns).Take(columns).Select(v => v!.DeepClone())]) }))];
    }

    // As most clients write JSON (Python's json, JavaScript's JSON.stringify): base64's '+' and '/' are
    // not escaped. .NET's default encoder writes '+' as \u002B, which the service accepts at the cost of
    // unescaping the string first.
    private static readonly JsonSerializerOptions ClientJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static byte[] Serialize(JsonObject body) => JsonSerializer.SerializeToUtf8Bytes(body, ClientJson);

    private InvalidOperationException Invalid(string field, string problem) =>
        new($"Model '{Name}': model.json field '{field}' {problem}.");
}
