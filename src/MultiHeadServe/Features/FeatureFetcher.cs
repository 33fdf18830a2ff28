using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Extensions.Options;
using MultiHeadServe.Features.Images;
using MultiHeadServe.Features.Store;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;

namespace MultiHeadServe.Features;

/// <summary>
/// Turns a request body into the model's feature tensor: inline values, entity keys looked up in the
/// store (every entity of every row in one lookup: one round trip), or images decoded
/// once. Every problem with the client's input becomes a <see cref="FeatureRequestException"/> naming the field.
/// </summary>
public sealed class FeatureFetcher(IFeatureStore store, IOptions<ServeOptions> options, TensorBudget tensors)
{
    /// <summary>Fields every feature-carrying body may have beside its rows.</summary>
    private static readonly string[] ImageRowFields = ["image"];

    public static readonly IReadOnlySet<string> CommonEnvelope = new HashSet<string>(["instances", "heads"], StringComparer.Ordinal);

    public async Task<FetchedFeatures> FetchAsync(LoadedModel model, JsonDocument document, IReadOnlyList<string>? heads,
        IReadOnlySet<string> envelope, CancellationToken cancellationToken)
    {
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw FeatureRequestException.BadField("$", "The body must be a JSON object.");
        }

        var (rows, prefix) = Rows(root, options.Value.MaxInstances, envelope);
        var tensor = tensors.Rent(rows.Count, model.RowLength, prefix.Length == 0 ? "$" : "instances");
        try
        {
            var buffer = tensor.Buffer;
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            var imageSizes = new ImageSize?[rows.Count];
            string source;
            if (model.Manifest.Features.Source == FeatureSource.Image)
            {
                FillImages(model, rows, prefix, envelope, buffer, imageSizes);
                source = "image";
            }
            else
            {
                source = await FillTabularAsync(model, rows, prefix, envelope, buffer, cancellationToken);
            }

            var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            return new FetchedFeatures(model, rows.Count, prefix.Length == 0, tensor, imageSizes, source, heads, document, elapsed);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The features of an image upload: each image decoded once into its row, in order. The caller has checked
    /// that the model takes images and that there are at most Serve:MaxInstances of them.
    /// </summary>
    /// <param name="model">An image model.</param>
    /// <param name="images">One per row; only read during the call.</param>
    /// <param name="singleRow">Answer as one row (a raw image body) rather than as instances (a form).</param>
    /// <param name="heads">Heads from the query, or null.</param>
    internal FetchedFeatures FetchUploads(LoadedModel model, IReadOnlyList<UploadedImage> images, bool singleRow, IReadOnlyList<string>? heads)
    {
        var tensor = tensors.Rent(images.Count, model.RowLength, "image");
        try
        {
            var buffer = tensor.Buffer;
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            var (preprocessing, limits) = ImageInput(model);
            var imageSizes = new ImageSize?[images.Count];
            for (var r = 0; r < images.Count; r++)
            {
                try
                {
                    WriteImage(ImageDecoder.Decode(images[r].Encoded.Span, limits), preprocessing, model, r, buffer, imageSizes);
                }
                catch (ImageDecodeException ex)
                {
                    throw BadImage(images[r].Field, ex);
                }
            }

            var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            return new FetchedFeatures(model, images.Count, singleRow, tensor, imageSizes, "image", heads, document: null, elapsed);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    private static (List<JsonElement> Rows, string Prefix) Rows(JsonElement root, int maxInstances, IReadOnlySet<string> envelope)
    {
        if (!root.TryGetProperty("instances", out var instances))
        {
            return ([root], "");
        }

        if (instances.ValueKind != JsonValueKind.Array)
        {
            throw FeatureRequestException.BadField("instances", "instances must be an array of rows.");
        }

        var count = instances.GetArrayLength();
        if (count == 0 || count > maxInstances)
        {
            throw FeatureRequestException.BadField("instances", $"instances must hold between 1 and {maxInstances} rows; it holds {count}.");
        }

        foreach (var property in root.EnumerateObject())
        {
            if (!envelope.Contains(property.Name))
            {
                throw FeatureRequestException.BadField(property.Name, $"'{property.Name}' is not allowed beside instances; put row fields inside each instance.");
            }
        }

        var rows = new List<JsonElement>(count);
        var index = 0;
        foreach (var row in instances.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Object)
            {
                throw FeatureRequestException.BadField($"instances[{index}]", "each instance must be a JSON object.");
            }

            rows.Add(row);
            index++;
        }

        return (rows, "instances");
    }

    private static string Field(string prefix, int row, string name) =>
        prefix.Length == 0 ? name : $"{prefix}[{row}].{name}";

    private static void RejectUnknown(JsonElement row, string prefix, int index, IReadOnlyList<string> allowed, IReadOnlySet<string> envelope)
    {
        foreach (var property in row.EnumerateObject())
        {
            // Row fields are compared as UTF-8 in place; a name is made into a string only for the envelope's check.
            if (!NameIsOneOf(property, allowed) && !(prefix.Length == 0 && envelope.Contains(property.Name)))
            {
                throw FeatureRequestException.BadField(Field(prefix, index, property.Name),
                    $"'{property.Name}' is not a field of this model's rows (expected {string.Join(", ", allowed)}).");
            }
        }
    }

    private static bool NameIsOneOf(JsonProperty property, IReadOnlyList<string> names)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (property.NameEquals(names[i]))
            {
                return true;
            }
        }

        return false;
    }

    private (ImagePreprocessing Preprocessing, ImageDecodeLimits Limits) ImageInput(LoadedModel model)
    {
        // A model's preprocessing is made once (per manifest); the limits once per fetcher.
        var spec = model.Manifest.Features.Image!;
        var preprocessing = Preprocessings.GetValue(spec, static spec =>
            new ImagePreprocessing(spec.Width, spec.Height, spec.Channels, spec.Layout, spec.Resize, spec.Scale, [.. spec.Mean], [.. spec.Std]));
        var limits = _imageLimits ??= new ImageDecodeLimits { MaxWidth = options.Value.MaxImageSide, MaxHeight = options.Value.MaxImageSide };
        return (preprocessing, limits with { Budget = new PixelBudget(options.Value.MaxPixelsPerRequest) });
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ImageSpec, ImagePreprocessing> Preprocessings = [];

    private ImageDecodeLimits? _imageLimits;

    /// <summary>Writes the image into its row of the tensor and gives its pixel buffer back.</summary>
    private static void WriteImage(DecodedImage decoded, ImagePreprocessing preprocessing, LoadedModel model, int row, float[] buffer, ImageSize?[] sizes)
    {
        using var _ = decoded;
        ImageTensorWriter.Write(decoded, preprocessing, buffer.AsSpan(row * model.RowLength, model.RowLength));
        sizes[row] = new ImageSize(decoded.Width, decoded.Height);
    }

    private static FeatureRequestException BadImage(string field, ImageDecodeException ex) => ex.OverBudget
        ? new FeatureRequestException(StatusCodes.Status413PayloadTooLarge, "Too many pixels", field, $"The image cannot be used: {ex.Message}")
        :
        FeatureRequestException.BadField(field, $"The image cannot be used: {ex.Reason}");

    private void FillImages(LoadedModel model, List<JsonElement> rows, string prefix, IReadOnlySet<string> envelope, float[] buffer, ImageSize?[] sizes)
    {
        var (preprocessing, limits) = ImageInput(model);
        for (var r = 0; r < rows.Count; r++)
        {
            RejectUnknown(rows[r], prefix, r, ImageRowFields, envelope);
            var field = Field(prefix, r, "image");
            if (!rows[r].TryGetProperty("image", out var image))
            {
                throw FeatureRequestException.BadField(field, "an image model needs 'image': a base64-encoded PNG, JPEG or WebP.");
            }

            if (image.ValueKind != JsonValueKind.String)
            {
                throw FeatureRequestException.BadField(field, $"'image' must be a base64 string, not {image.ValueKind.ToString().ToLowerInvariant()}.");
            }

            try
            {
                WriteImage(DecodeImage(image, limits), preprocessing, model, r, buffer, sizes);
            }
            catch (ImageDecodeException ex)
            {
                throw BadImage(field, ex);
            }
        }
    }

    /// <summary>
    /// Decodes the base64 straight from the request's UTF-8 bytes; only a string with JSON escapes in it
    /// (some serialisers write '+' and '/' as \u002B and \/) is unescaped into a string first.
    /// </summary>
    private static DecodedImage DecodeImage(JsonElement image, ImageDecodeLimits limits)
    {
        var text = JsonMarshal.GetRawUtf8Value(image)[1..^1]; // a string's raw value: its quotes and what they hold
        return text.Contains((byte)'\\')
            ? ImageDecoder.DecodeBase64(image.GetString()!, limits)
            : ImageDecoder.DecodeBase64(text, limits);
    }

    private async Task<string> FillTabularAsync(LoadedModel model, List<JsonElement> rows, string prefix, IReadOnlySet<string> envelope, float[] buffer, CancellationToken cancellationToken)
    {
        var features = model.Manifest.Features;
        var columns = features.Columns!;
        var layout = TabularLayout.Of(features);
        var entities = layout.Entities;
        var storeRows = new List<int>(rows.Count);
        for (var r = 0; r < rows.Count; r++)
        {
            RejectUnknown(rows[r], prefix, r, layout.AllowedFields, envelope);
            if (rows[r].TryGetProperty("features", out var values))
            {
                if (layout.HasEntityKey(rows[r]))
                {
                    throw FeatureRequestException.BadField(Field(prefix, r, "features"), "give either 'features' or entity keys for a row, not both.");
                }

                FillInline(values, columns, buffer.AsSpan(r * columns.Count, columns.Count), Field(prefix, r, "features"));
            }
            else
            {
                storeRows.Add(r);
            }
        }

        if (storeRows.Count > 0)
        {
            await FillFromStoreAsync(rows, prefix, storeRows, layout, columns, buffer, cancellationToken);
        }

        return storeRows.Count == 0 ? "inline" : storeRows.Count == rows.Count ? "store" : "mixed";
    }

    private static void FillInline(JsonElement values, IReadOnlyList<string> columns, Span<float> row, string field)
    {
        switch (values.ValueKind)
        {
            case JsonValueKind.Array:
                var count = values.GetArrayLength();
                if (count != columns.Count)
                {
                    throw FeatureRequestException.BadField(field, $"expected {columns.Count} feature values ({string.Join(", ", columns)}); got {count}.");
                }

                var i = 0;
                foreach (var value in values.EnumerateArray())
                {
                    row[i] = Number(value, $"{field}[{i}]");
                    i++;
                }

                return;
            case JsonValueKind.Object:
                var seen = 0;
                foreach (var property in values.EnumerateObject())
                {
                    var index = IndexOf(columns, property.Name);
                    if (index < 0)
                    {
                        throw FeatureRequestException.BadField($"{field}.{property.Name}", $"'{property.Name}' is not a feature of this model (features: {string.Join(", ", columns)}).");
                    }

                    row[index] = Number(property.Value, $"{field}.{property.Name}");
                    seen++;
                }

                if (seen != columns.Count)
                {
                    var given = values.EnumerateObject().Select(p => p.Name).ToHashSet();
                    throw FeatureRequestException.BadField(field, $"missing feature(s): {string.Join(", ", columns.Where(c => !given.Contains(c)))}.");
                }

                return;
            default:
                throw FeatureRequestException.BadField(field, "'features' must be an array of numbers or an object of named numbers.");
        }
    }

    private static int IndexOf(IReadOnlyList<string> columns, string name)
    {
        for (var i = 0; i < columns.Count; i++)
        {
            if (columns[i] == name)
            {
                return i;
            }
        }

        return -1;
    }

    private static float Number(JsonElement value, string field)
    {
        if (value.ValueKind != JsonValueKind.Number)
        {
            throw FeatureRequestException.BadField(field, $"expected a number, got {Describe(value)}.");
        }

        var number = value.GetDouble();
        var single = (float)number;
        if (!float.IsFinite(single))
        {
            throw FeatureRequestException.BadField(field, $"{value.GetRawText()} is outside the float32 range.");
        }

        return single;
    }

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Truncate(value.GetString()!)}\" (NaN and Infinity are not accepted)",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => value.ValueKind.ToString(),
    };

    private static string Truncate(string text) => text.Length <= 32 ? text : text[..32] + "…";

    private async Task FillFromStoreAsync(List<JsonElement> rows, string prefix, List<int> storeRows, TabularLayout layout,
        IReadOnlyList<string> columns, float[] buffer, CancellationToken cancellationToken)
    {
        var entities = layout.Entities;
        if (entities.Count == 0)
        {
            throw FeatureRequestException.BadField(Field(prefix, storeRows[0], "features"), "this model takes inline 'features' only.");
        }

        var keys = new string[entities.Count][];
        for (var e = 0; e < keys.Length; e++)
        {
            keys[e] = new string[storeRows.Count];
        }

        for (var k = 0; k < storeRows.Count; k++)
        {
            var r = storeRows[k];
            for (var e = 0; e < entities.Count; e++)
            {
                var field = Field(prefix, r, entities[e].Key);
                if (!rows[r].TryGetProperty(entities[e].Key, out var key))
                {
                    throw FeatureRequestException.BadField(Field(prefix, r, "features"),
                        $"give 'features' or the entity keys {string.Join(", ", entities.Select(x => x.Key))}; '{entities[e].Key}' is missing.");
                }

                keys[e][k] = key.ValueKind switch
                {
                    JsonValueKind.String when key.GetString()!.Length is > 0 and <= 256 => key.GetString()!,
                    JsonValueKind.Number => key.GetRawText(),
                    _ => throw FeatureRequestException.BadField(field, $"an entity key must be a non-empty string (at most 256 characters) or a number, got {Describe(key)}."),
                };
            }
        }

        IReadOnlyList<IReadOnlyList<float[]?>> found;
        try
        {
            // Every entity of every row in one call: one round trip to the store.
            var lookups = new EntityLookup[entities.Count];
            for (var e = 0; e < lookups.Length; e++)
            {
                lookups[e] = new EntityLookup(entities[e].Table, keys[e], entities[e].Columns);
            }

            found = await store.GetEntitiesAsync(lookups, cancellationToken);
        }
        catch (FeatureStoreUnavailableException ex)
        {
            throw new FeatureRequestException(StatusCodes.Status503ServiceUnavailable, "Feature store unavailable", "features",
                $"The feature store did not answer: {ex.Message}", ex.RetryAfter);
        }
        catch (FeatureSchemaException ex)
        {
            // The store lacks a table or column the manifest names (not imported yet): the model is not ready, which
            // readiness reports too; not the client's fault.
            throw new FeatureRequestException(StatusCodes.Status503ServiceUnavailable, "Feature store not ready", "features",
                $"The feature store is not ready for this model: {ex.Message}", FeatureStoreUnavailableException.DefaultRetryAfter);
        }

        for (var e = 0; e < entities.Count; e++)
        {
            var columnIndex = layout.ColumnIndex[e];
            for (var k = 0; k < storeRows.Count; k++)
            {
                var values = found[e][k];
                var r = storeRows[k];
                if (values is null)
                {
                    throw new FeatureRequestException(StatusCodes.Status404NotFound, "Unknown entity", Field(prefix, r, entities[e].Key),
                        $"No {entities[e].Key} '{keys[e][k]}' in the feature store (table {entities[e].Table}).");
                }

                var row = buffer.AsSpan(r * columns.Count, columns.Count);
                for (var c = 0; c < columnIndex.Length; c++)
                {
                    row[columnIndex[c]] = values[c];
                }
            }
        }
    }
}

/// <summary>
/// What tabular requests of a model need from its feature spec, worked out once per spec rather than per request:
/// the fields a row may carry, and where each entity's columns go in the model's feature row.
/// </summary>
internal sealed class TabularLayout
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<FeatureSpec, TabularLayout> Layouts = [];

    private TabularLayout(FeatureSpec spec)
    {
        Entities = spec.Entities ?? [];
        AllowedFields = [.. Entities.Select(e => e.Key), "features"];
        var columns = spec.Columns ?? [];
        ColumnIndex = [.. Entities.Select(e => e.Columns.Select(c => columns.ToList().IndexOf(c)).ToArray())];
    }

    public IReadOnlyList<EntitySpec> Entities { get; }

    /// <summary>The entity keys and "features": what a row may hold.</summary>
    public IReadOnlyList<string> AllowedFields { get; }

    /// <summary>Per entity, the position in the feature row of each of its columns.</summary>
    public IReadOnlyList<int[]> ColumnIndex { get; }

    public static TabularLayout Of(FeatureSpec spec) => Layouts.GetValue(spec, static s => new TabularLayout(s));

    /// <summary>Whether the row carries any entity key.</summary>
    public bool HasEntityKey(JsonElement row)
    {
        foreach (var entity in Entities)
        {
            if (row.TryGetProperty(entity.Key, out _))
            {
                return true;
            }
        }

        return false;
    }
}
