using System.Text.Json.Serialization;
using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>
/// What the head applies to its raw output: nothing (the model already emits probabilities or values), a softmax
/// over the row, or an independent sigmoid per value. Which kinds allow which is in <see cref="HeadSpecRules"/>.
/// </summary>
[JsonConverter(typeof(ManifestEnumConverter<Activation>))]
public enum Activation
{
    [JsonStringEnumMemberName("none")]
    None,

    [JsonStringEnumMemberName("softmax")]
    Softmax,

    [JsonStringEnumMemberName("sigmoid")]
    Sigmoid,
}
