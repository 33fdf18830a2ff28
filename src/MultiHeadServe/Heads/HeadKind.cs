using System.Text.Json.Serialization;
using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>
/// What a head's output is and how it is decoded and scored: the manifest's <c>kind</c>, and the <c>kind</c> its
/// results carry. What each kind reads from its manifest entry is stated once, in <see cref="HeadSpecRules"/>.
/// </summary>
[JsonConverter(typeof(ManifestEnumConverter<HeadKind>))]
public enum HeadKind
{
    [JsonStringEnumMemberName(HeadKinds.Classification)]
    Classification,

    [JsonStringEnumMemberName(HeadKinds.Multilabel)]
    Multilabel,

    [JsonStringEnumMemberName(HeadKinds.Binary)]
    Binary,

    [JsonStringEnumMemberName(HeadKinds.Regression)]
    Regression,

    [JsonStringEnumMemberName(HeadKinds.BoundingBox)]
    BoundingBox,

    [JsonStringEnumMemberName(HeadKinds.Embedding)]
    Embedding,
}

/// <summary>
/// The kinds' names as constants, for the attributes that need a constant: <see cref="HeadKind"/>'s JSON names and
/// the results' <c>kind</c> discriminators, so the two cannot drift apart.
/// </summary>
internal static class HeadKinds
{
    public const string Classification = "classification";
    public const string Multilabel = "multilabel";
    public const string Binary = "binary";
    public const string Regression = "regression";
    public const string BoundingBox = "bbox";
    public const string Embedding = "embedding";
}
