using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.ML.OnnxRuntime;
using MultiHeadServe.Onnx;
using SkiaSharp;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace MultiHeadServe.Benchmarks.Hosting;

/// <summary>
/// The `plain` sub-command: what a team writes in an afternoon instead of MultiHeadServe, the alternative a user
/// compares against. A bare minimal API serving one model folder: it decodes the image (SkiaSharp) or looks the
/// entities up in SQLite once, runs one official ONNX Runtime session with one intra-op thread and returns the
/// decoded heads as JSON. No batcher, no middleware, no validation beyond what the libraries do. Started once
/// for a model's multi-head graph (the plain endpoint) and once per single-head graph (x plain APIs).
/// </summary>
internal static class PlainEndpoint
{
    public const string Command = "plain";

    public const string Route = "/predict";

    /// <param name="args"><c>&lt;model folder&gt; &lt;SQLite file&gt; cpu|cuda</c>, then the host's own arguments.</param>
    public static async Task<int> RunAsync(string[] args)
    {
        var model = PlainModel.Load(args[0], args[1], args[2] == "cuda");
        var builder = WebApplication.CreateBuilder(args[3..]);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapGet("/readyz", () => TypedResults.Ok());
        app.MapPost(Route, async (HttpRequest request) =>
        {
            var body = await JsonSerializer.DeserializeAsync<Dictionary<string, JsonElement>>(request.Body);
            return TypedResults.Ok(new { model = model.Name, heads = model.Predict(body!) });
        });
        await app.RunAsync();
        return 0;
    }

    /// <summary>One model folder's manifest, session and feature access, read the simple way.</summary>
    private sealed class PlainModel
    {
        private readonly InferenceSession _session;
        private readonly JsonObject _manifest;
        private readonly string _input;
        private readonly string[] _outputs;
        private readonly string _connectionString;

        private PlainModel(string name, JsonObject manifest, InferenceSession session, string connectionString)
        {
            Name = name;
            _manifest = manifest;
            _session = session;
            _connectionString = connectionString;
            _input = manifest["features"]!["input"]!.GetValue<string>();
            _outputs = [.. Heads.Select(h => h["output"]!.GetValue<string>()).Distinct()];
        }

        public string Name { get; }

        private IEnumerable<JsonObject> Heads => _manifest["heads"]!.AsArray().Select(h => h!.AsObject()).Where(h => h["served"]?.GetValue<bool>() ?? true);

        public static PlainModel Load(string folder, string featuresDatabase, bool cuda)
        {
            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "model.json")))!.AsObject();
            var version = Directory.EnumerateDirectories(folder).Select(Path.GetFileName).Where(n => int.TryParse(n, out _)).Max(n => int.Parse(n!, CultureInfo.InvariantCulture));
            var versionFolder = Path.Combine(folder, version.ToString(CultureInfo.InvariantCulture));
            var options = new SessionOptions { IntraOpNumThreads = 1 };
            if (cuda)
            {
                options.AppendExecutionProvider_CUDA(0);
            }

            var members = manifest["members"] is JsonArray list ? list.Select(m => m!.GetValue<string>()).ToList() : [];
            var session = members.Count == 0
                ? new InferenceSession(Path.Combine(versionFolder, "model.onnx"), options)
                : new InferenceSession(new OnnxModel(ModelFusion.Fuse([.. members.Select(m => (Path.GetFileNameWithoutExtension(m), OnnxModel.Load(Path.Combine(versionFolder, m)).Proto))],
                    new FuseOptions { DeduplicateComputation = true })).ToBytes(), options);
            return new PlainModel(Path.GetFileName(folder), manifest, session, $"Data Source={featuresDatabase};Mode=ReadOnly");
        }

        public Dictionary<string, object> Predict(Dictionary<string, JsonElement> body)
        {
            var features = _manifest["features"]!;
            var (tensor, shape, imageSize) = features["source"]!.GetValue<string>() == "image"
                ? ImageTensor(body["image"].GetString()!, features["image"]!)
                : StoreTensor(body, features);
            using var input = OrtValue.CreateTensorValueFromMemory(tensor, shape);
            using var runOptions = new RunOptions();
            using var results = _session.Run(runOptions, [_input], [input], _outputs);
            var outputs = _outputs.Zip(results).ToDictionary(p => p.First, p => p.Second.GetTensorDataAsSpan<float>().ToArray());
            return Heads.ToDictionary(h => h["name"]!.GetValue<string>(), h => Decode(h, outputs[h["output"]!.GetValue<string>()], imageSize));
        }

        private static (float[] Tensor, long[] Shape, (int Width, int Height)? Size) ImageTensor(string base64, JsonNode spec)
        {
            using var decoded = SKBitmap.Decode(Convert.FromBase64String(base64));
            int width = spec["width"]!.GetValue<int>(), height = spec["height"]!.GetValue<int>();
            using var bitmap = decoded.Width == width && decoded.Height == height
                ? decoded.Copy(SKColorType.Rgba8888)
                : decoded.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul), SKSamplingOptions.Default);
            var pixels = bitmap.GetPixelSpan();
            var scale = spec["scale"]!.GetValue<float>();
            var mean = spec["mean"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
            var std = spec["std"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
            var tensor = new float[3 * width * height];
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    var i = (y * width) + x;
                    tensor[i] = ((pixels[4 * i] * scale) - mean[0]) / std[0];
                    tensor[(width * height) + i] = ((pixels[(4 * i) + 1] * scale) - mean[1]) / std[1];
                    tensor[(2 * width * height) + i] = ((pixels[(4 * i) + 2] * scale) - mean[2]) / std[2];
                }
            }

            return (tensor, [1, 3, height, width], (decoded.Width, decoded.Height));
        }

        private (float[] Tensor, long[] Shape, (int, int)? Size) StoreTensor(Dictionary<string, JsonElement> body, JsonNode features)
        {
            var columns = features["columns"]!.AsArray().Select(c => c!.GetValue<string>()).ToList();
            var tensor = new float[columns.Count];
            using var connection = new SqliteConnection(_connectionString);
            connection.Open();
            foreach (var entity in features["entities"]!.AsArray())
            {
                var entityColumns = entity!["columns"]!.AsArray().Select(c => c!.GetValue<string>()).ToList();
                using var command = connection.CreateCommand();
                command.CommandText = $"SELECT {string.Join(", ", entityColumns.Select(c => $"\"{c}\""))} FROM \"{entity["table"]}\" WHERE \"{entity["key"]}\" = $key";
                command.Parameters.AddWithValue("$key", body[entity["key"]!.GetValue<string>()].GetString());
                using var reader = command.ExecuteReader();
                if (!reader.Read())
                {
                    throw new BadHttpRequestException($"unknown {entity["key"]}", StatusCodes.Status404NotFound);
                }

                for (var c = 0; c < entityColumns.Count; c++)
                {
                    tensor[columns.IndexOf(entityColumns[c])] = (float)reader.GetDouble(c);
                }
            }

            return (tensor, [1, columns.Count], null);
        }

        private static object Decode(JsonObject head, float[] raw, (int Width, int Height)? image)
        {
            switch (head["kind"]!.GetValue<string>())
            {
                case "classification":
                    var max = raw.Max();
                    var exp = raw.Select(v => Math.Exp(v - max)).ToArray();
                    var sum = exp.Sum();
                    var best = Array.IndexOf(raw, max);
                    return new { kind = "classification", index = best, probability = (float)(exp[best] / sum), probabilities = exp.Select(e => (float)(e / sum)).ToArray() };
                case "binary":
                    var p = head["activation"]?.GetValue<string>() == "sigmoid" ? 1 / (1 + Math.Exp(-raw[0])) : raw[0];
                    var threshold = head["threshold"]?.GetValue<double>() ?? 0.5;
                    return new { kind = "binary", probability = (float)p, decision = p >= threshold };
                case "regression":
                    return new { kind = "regression", value = (float)((raw[0] * (head["scale"]?.GetValue<double>() ?? 1)) + (head["offset"]?.GetValue<double>() ?? 0)) };
                case "bbox":
                    var box = new { xMin = raw[0], yMin = raw[1], xMax = raw[2], yMax = raw[3] };
                    return image is { } size
                        ? new { kind = "bbox", box, pixels = (object)new { xMin = raw[0] * size.Width, yMin = raw[1] * size.Height, xMax = raw[2] * size.Width, yMax = raw[3] * size.Height } }
                        : new { kind = "bbox", box, pixels = (object)new { } };
                default:
                    return new { kind = head["kind"]!.GetValue<string>(), values = raw };
            }
        }
    }
}
