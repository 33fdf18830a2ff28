using System.Text.Json.Serialization;

namespace MultiHeadServe.Models;

/// <summary>Where a model's input features come from by default; inline values are always accepted for tabular models.</summary>
[JsonConverter(typeof(ManifestEnumConverter<FeatureSource>))]
public enum FeatureSource
{
    /// <summary>An image in the request, preprocessed as <see cref="FeatureSpec.Image"/> says.</summary>
    [JsonStringEnumMemberName("image")]
    Image,

    /// <summary>Rows from the feature store, looked up by the request's entity keys.</summary>
    [JsonStringEnumMemberName("store")]
    Store,

    /// <summary>Values the request carries.</summary>
    [JsonStringEnumMemberName("inline")]
    Inline,
}
