using System.Text.Json.Serialization;

namespace MultiHeadServe.Heads;

/// <summary>
/// One head's decoded output for one request. Serialised through this base type (as the combined
/// response's values are), every result starts with a <c>kind</c> field naming its shape, so a client can
/// switch on it. Numbers are float32, the model's own precision; a result never holds NaN or Infinity.
/// </summary>
/// <param name="Kind">The head kind, as in the manifest; written to JSON as the <c>kind</c> discriminator.</param>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "kind")]
[JsonDerivedType(typeof(ClassificationResult), HeadKinds.Classification)]
[JsonDerivedType(typeof(MultilabelResult), HeadKinds.Multilabel)]
[JsonDerivedType(typeof(BinaryResult), HeadKinds.Binary)]
[JsonDerivedType(typeof(RegressionResult), HeadKinds.Regression)]
[JsonDerivedType(typeof(BoundingBoxResult), HeadKinds.BoundingBox)]
[JsonDerivedType(typeof(EmbeddingResult), HeadKinds.Embedding)]
public abstract record HeadResult([property: JsonIgnore] HeadKind Kind);

/// <summary>A classification head: the most probable class, the top k and every class's probability.</summary>
/// <param name="Label">The most probable class.</param>
/// <param name="Index">Its index in the model's output.</param>
/// <param name="Probability">Its probability.</param>
/// <param name="Top">The manifest's <c>topK</c> most probable classes, most probable first; equal probabilities keep index order.</param>
/// <param name="Probabilities">Every class's probability, keyed by label, in output order.</param>
public sealed record ClassificationResult(
    string Label,
    int Index,
    float Probability,
    IReadOnlyList<ClassScore> Top,
    IReadOnlyDictionary<string, float> Probabilities) : HeadResult(HeadKind.Classification);

/// <summary>One class and its probability.</summary>
public sealed record ClassScore(string Label, int Index, float Probability);

/// <summary>A multilabel head: each label's probability and decision, and the positive labels.</summary>
/// <param name="Labels">Every label in output order.</param>
/// <param name="Positive">The labels whose probability reaches the threshold, in output order.</param>
public sealed record MultilabelResult(IReadOnlyList<LabelDecision> Labels, IReadOnlyList<string> Positive) : HeadResult(HeadKind.Multilabel);

/// <summary>One label of a multilabel head: its probability and whether it reaches the threshold.</summary>
public sealed record LabelDecision(string Label, float Probability, bool Positive);

/// <summary>A binary head: the probability of the positive class and the decision at the threshold.</summary>
/// <param name="Probability">Probability of the positive class.</param>
/// <param name="Decision">Whether <paramref name="Probability"/> is at least <paramref name="Threshold"/>.</param>
/// <param name="Threshold">The manifest's decision threshold.</param>
public sealed record BinaryResult(float Probability, bool Decision, float Threshold) : HeadResult(HeadKind.Binary);

/// <summary>
/// A regression head in served units (<c>raw * scale + offset</c>): <see cref="Value"/> for a head with one
/// value per row, <see cref="Values"/> for a wider one. A head always answers with the same field.
/// </summary>
public sealed record RegressionResult() : HeadResult(HeadKind.Regression)
{
    /// <summary>The value of a one-output head; absent for wider heads.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public float? Value { get; init; }

    /// <summary>The values of a head with several outputs per row; absent for one-output heads.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<float>? Values { get; init; }
}

/// <summary>
/// A box head, always as corners whatever the model's format: <see cref="Box"/> normalised to [0, 1] of
/// the image, and <see cref="Pixels"/> in the request's original image when its size is known.
/// </summary>
/// <param name="Box">Normalised corners, clipped to [0, 1], min &lt;= max.</param>
/// <param name="Format">Always <c>xyxy</c>: the layout of <paramref name="Box"/> and <paramref name="Pixels"/>.</param>
/// <param name="Pixels">Pixel corners in the original image, clipped to it; absent when the request had no image size.</param>
public sealed record BoundingBoxResult(
    BoxCoordinates Box,
    string Format,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] BoxCoordinates? Pixels) : HeadResult(HeadKind.BoundingBox);

/// <summary>Box corners: left, top, right, bottom.</summary>
public sealed record BoxCoordinates(float XMin, float YMin, float XMax, float YMax);

/// <summary>An embedding head: the vector as the model produced it and its L2 norm.</summary>
public sealed record EmbeddingResult(IReadOnlyList<float> Vector, float Norm) : HeadResult(HeadKind.Embedding);
