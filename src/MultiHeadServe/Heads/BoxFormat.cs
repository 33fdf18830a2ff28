using System.Text.Json.Serialization;
using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>How a box head lays out its four values: corners, corner and size, or centre and size.</summary>
[JsonConverter(typeof(ManifestEnumConverter<BoxFormat>))]
public enum BoxFormat
{
    [JsonStringEnumMemberName("xyxy")]
    Xyxy,

    [JsonStringEnumMemberName("xywh")]
    Xywh,

    [JsonStringEnumMemberName("cxcywh")]
    Cxcywh,
}
