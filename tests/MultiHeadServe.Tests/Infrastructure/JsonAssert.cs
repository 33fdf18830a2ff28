using System.Text.Json;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>Two JSON answers alike: the same structure and strings, numbers within a tolerance (relative above 1).</summary>
internal static class JsonAssert
{
    public static void SameNumbers(JsonElement expected, JsonElement actual, double tolerance, string path = "$")
    {
        Assert.Equal(expected.ValueKind, actual.ValueKind);
        switch (expected.ValueKind)
        {
            case JsonValueKind.Object:
                Assert.Equal(expected.EnumerateObject().Select(p => p.Name), actual.EnumerateObject().Select(p => p.Name));
                foreach (var property in expected.EnumerateObject())
                {
                    SameNumbers(property.Value, actual.GetProperty(property.Name), tolerance, $"{path}.{property.Name}");
                }

                break;
            case JsonValueKind.Array:
                Assert.Equal(expected.GetArrayLength(), actual.GetArrayLength());
                for (var i = 0; i < expected.GetArrayLength(); i++)
                {
                    SameNumbers(expected[i], actual[i], tolerance, $"{path}[{i}]");
                }

                break;
            case JsonValueKind.Number:
                Assert.True(Math.Abs(expected.GetDouble() - actual.GetDouble()) <= tolerance * Math.Max(1, Math.Abs(expected.GetDouble())),
                    $"{path}: {actual.GetDouble()}, expected {expected.GetDouble()}");
                break;
            default:
                Assert.Equal(expected.GetRawText(), actual.GetRawText());
                break;
        }
    }
}
