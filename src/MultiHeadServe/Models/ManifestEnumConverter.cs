using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MultiHeadServe.Models;

/// <summary>
/// Reads and writes a manifest enum by the names its members declare with <see cref="JsonStringEnumMemberNameAttribute"/>,
/// through <see cref="JsonStringEnumConverter{TEnum}"/>, but exactly as a manifest spells them: no other casing, no
/// numbers. Anything else is a <see cref="JsonException"/> naming the value and the allowed names; the loader reports it
/// with the field's path, as it reports every other manifest mistake.
/// </summary>
internal sealed class ManifestEnumConverter<TEnum> : JsonConverter<TEnum>
    where TEnum : struct, Enum
{
    private static readonly JsonConverter<TEnum> Names = (JsonConverter<TEnum>)new JsonStringEnumConverter<TEnum>(namingPolicy: null, allowIntegerValues: false)
        .CreateConverter(typeof(TEnum), JsonSerializerOptions.Default)!;

    public override TEnum Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String && ManifestEnum<TEnum>.Names.Contains(reader.GetString(), StringComparer.Ordinal)
            ? Names.Read(ref reader, typeToConvert, options)
            : throw new JsonException(ManifestEnum<TEnum>.NotOneOf(Show(ref reader)));

    public override void Write(Utf8JsonWriter writer, TEnum value, JsonSerializerOptions options) => Names.Write(writer, value, options);

    private static string Show(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => $"'{reader.GetString()}'",
        JsonTokenType.Number or JsonTokenType.True or JsonTokenType.False or JsonTokenType.Null =>
            Encoding.UTF8.GetString(reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan),
        JsonTokenType.StartArray => "an array",
        _ => "an object",
    };
}

/// <summary>A manifest enum's names, read once from its members' <see cref="JsonStringEnumMemberNameAttribute"/>.</summary>
internal static class ManifestEnum<TEnum>
    where TEnum : struct, Enum
{
    private static readonly Dictionary<TEnum, string> ByValue = Enum.GetValues<TEnum>().ToDictionary(
        value => value,
        value => typeof(TEnum).GetField(value.ToString())!.GetCustomAttributes(typeof(JsonStringEnumMemberNameAttribute), false)
            .Cast<JsonStringEnumMemberNameAttribute>().SingleOrDefault()?.Name ?? value.ToString());

    /// <summary>Every name, in declaration order.</summary>
    public static readonly IReadOnlyList<string> Names = [.. Enum.GetValues<TEnum>().Select(v => ByValue[v])];

    public static string NameOf(TEnum value) => ByValue.TryGetValue(value, out var name) ? name : value.ToString();

    /// <summary>The manifest's reason for a value outside the enum, e.g. <c>'relu' is not one of none, softmax, sigmoid.</c></summary>
    public static string NotOneOf(string shown) => $"{shown} is not one of {string.Join(", ", Names)}.";
}

/// <summary>Manifest enums as the manifest spells them.</summary>
internal static class ManifestEnumNames
{
    /// <summary>The value's name in manifests and responses, e.g. <c>bbox</c> for <see cref="Heads.HeadKind.BoundingBox"/>.</summary>
    public static string ManifestName<TEnum>(this TEnum value)
        where TEnum : struct, Enum => ManifestEnum<TEnum>.NameOf(value);
}
