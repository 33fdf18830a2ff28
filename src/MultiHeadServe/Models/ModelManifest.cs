using System.Text.Json.Serialization;
using MultiHeadServe.Heads;

namespace MultiHeadServe.Models;

/// <summary>
/// A model's <c>model.json</c>: its inputs, how a request becomes the input tensor, every head, batching
/// and how losses combine. Bound from JSON (camelCase; unknown fields are an error so typos surface at load)
/// and validated against the session's real metadata by <see cref="ManifestValidator"/>.
/// </summary>
public sealed record ModelManifest
{
    public required string Name { get; init; }

    public string? Description { get; init; }

    /// <summary>auto | cpu | cuda; null: the service default.</summary>
    public string? Provider { get; init; }

    /// <summary>
    /// Threads inside one operator for this model's session (0: one per core); null: the service default.
    /// A small model serving many concurrent requests runs best on 1: its parallelism comes from the requests.
    /// </summary>
    public int? IntraOpThreads { get; init; }

    public IReadOnlyList<InputSpec> Inputs { get; init; } = [];

    /// <summary>Several ONNX files in the version folder over the same inputs, fused into one graph at load.</summary>
    public IReadOnlyList<string>? Members { get; init; }

    public required FeatureSpec Features { get; init; }

    public IReadOnlyList<HeadSpec> Heads { get; init; } = [];

    public BatchingSpec Batching { get; init; } = new();

    /// <summary>Which version folders are served (Triton's <c>version_policy</c>); null: the newest that loads.</summary>
    public VersionPolicy? VersionPolicy { get; init; }

    public LossSpec? Loss { get; init; }

    /// <summary>Provenance written by the training kit; served as-is.</summary>
    public Dictionary<string, object?>? Training { get; init; }
}

/// <summary>One graph input as the manifest declares it; -1 marks a dynamic dimension.</summary>
public sealed record InputSpec(string Name, string DataType, IReadOnlyList<long> Shape);

/// <summary>How a request becomes the model's input tensor.</summary>
public sealed record FeatureSpec
{
    /// <summary>image | store | inline: the default source; inline values are always accepted for tabular models.</summary>
    public required FeatureSource Source { get; init; }

    /// <summary>The ONNX input the tensor feeds.</summary>
    public required string Input { get; init; }

    public ImageSpec? Image { get; init; }

    /// <summary>Tabular models: tensor column order.</summary>
    public IReadOnlyList<string>? Columns { get; init; }

    /// <summary>Tabular models: the entities whose rows the store returns.</summary>
    public IReadOnlyList<EntitySpec>? Entities { get; init; }

    /// <summary>Seed the store from another model's <c>features/</c> folder.</summary>
    public string? SeedFrom { get; init; }
}

/// <summary>Image preprocessing: decode, resize, scale, normalise per channel, lay out.</summary>
public sealed record ImageSpec
{
    public int Width { get; init; }

    public int Height { get; init; }

    public int Channels { get; init; } = 3;

    /// <summary>nchw | nhwc.</summary>
    public string Layout { get; init; } = "nchw";

    /// <summary>bilinear | none (another size is a 400).</summary>
    public string Resize { get; init; } = "bilinear";

    public float Scale { get; init; } = 1f / 255f;

    public IReadOnlyList<float> Mean { get; init; } = [0f, 0f, 0f];

    public IReadOnlyList<float> Std { get; init; } = [1f, 1f, 1f];
}

/// <summary>An entity key (e.g. user_id) and the store table and columns it contributes.</summary>
public sealed record EntitySpec(string Key, string Table, IReadOnlyList<string> Columns);

/// <summary>One head: the ONNX output it reads and how that output is decoded and scored.</summary>
public sealed record HeadSpec
{
    public required string Name { get; init; }

    public required string Output { get; init; }

    /// <summary>classification | multilabel | binary | regression | bbox | embedding.</summary>
    public required HeadKind Kind { get; init; }

    /// <summary>none | softmax | sigmoid.</summary>
    public Activation Activation { get; init; } = Activation.None;

    /// <summary>File (relative to the model folder) with one label per line.</summary>
    public string? Labels { get; init; }

    public int TopK { get; init; } = 5;

    public float Threshold { get; init; } = 0.5f;

    /// <summary>xyxy | xywh | cxcywh.</summary>
    public BoxFormat BoxFormat { get; init; } = BoxFormat.Xyxy;

    public bool Normalized { get; init; } = true;

    public float Scale { get; init; } = 1f;

    public float Offset { get; init; }

    /// <summary>mse | mae | huber | bce | softmax_cross_entropy | smooth_l1 | giou.</summary>
    public string? Loss { get; init; }

    public bool Served { get; init; } = true;
}

/// <summary>Triton's dynamic-batcher settings.</summary>
public sealed record BatchingSpec
{
    public bool Enabled { get; init; } = true;

    public int MaxBatchSize { get; init; } = 32;

    /// <summary>
    /// How long the oldest request may wait for a batch to fill when no preferred size can be formed; 0 (Triton's
    /// default) batches only what queued while the instances were busy and never waits. Honoured to the
    /// millisecond: waits round up to whole milliseconds.
    /// </summary>
    public int MaxQueueDelayMicroseconds { get; init; }

    public IReadOnlyList<int> PreferredBatchSizes { get; init; } = [];

    public int MaxQueueSize { get; init; } = 1024;

    /// <summary>
    /// The longest a request may wait in the queue (Triton's <c>default_timeout_microseconds</c>); 0: no limit. A
    /// request the queue's recent pace says would wait longer is refused at once (429 with Retry-After), and one
    /// still queued at the limit leaves the queue unrun, so every admitted request's wait stays bounded.
    /// </summary>
    public int QueueTimeoutMicroseconds { get; init; } = 1_000_000;

    /// <summary>Batches that may run concurrently.</summary>
    public int Instances { get; init; } = 1;
}

/// <summary>How /evaluate combines per-head losses.</summary>
public sealed record LossSpec
{
    /// <summary>sum | weighted | uncertainty.</summary>
    public string Combination { get; init; } = "sum";

    public Dictionary<string, double>? Weights { get; init; }

    /// <summary>Learned log-variances s_i per head (uncertainty weighting).</summary>
    public Dictionary<string, double>? LogVariances { get; init; }
}

/// <summary>The JSON rules manifests are read with.</summary>
public static class ManifestJson
{
    public static readonly System.Text.Json.JsonSerializerOptions Options = new(System.Text.Json.JsonSerializerDefaults.Web)
    {
        ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };
}
