using System.Text;
using System.Text.Json;

namespace MultiHeadServe.Features;

/// <summary>Parses a request body, reporting malformed JSON with the JSON path where it broke.</summary>
internal static class JsonBody
{
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 32 };

    public static JsonDocument Parse(ReadOnlyMemory<byte> body)
    {
        try
        {
            return JsonDocument.Parse(body, DocumentOptions);
        }
        catch (JsonException ex)
        {
            var path = PathAtError(body.Span);
            throw FeatureRequestException.BadField(path,
                $"The body is not valid JSON at {path} (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}): {FirstSentence(ex.Message)}");
        }
    }

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" LineNumber", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).TrimEnd(' ', '|', '.') + ".";
    }

    /// <summary>Re-reads the body token by token, tracking property names and array indices, up to the failure.</summary>
    private static string PathAtError(ReadOnlySpan<byte> body)
    {
        var stack = new List<(bool IsArray, string Name, int Index)>();
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 32 });
        string? pendingProperty = null;
        var failedInside = false;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        pendingProperty = reader.GetString();
                        continue;
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        BeforeValue(stack, ref pendingProperty);
                        stack.Add((reader.TokenType == JsonTokenType.StartArray, pendingProperty ?? "", -1));
                        pendingProperty = null;
                        continue;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        stack.RemoveAt(stack.Count - 1);
                        continue;
                    default:
                        BeforeValue(stack, ref pendingProperty);
                        pendingProperty = null;
                        continue;
                }
            }

            // A body cut short ends the read without an error, but inside an open object or array.
            failedInside = stack.Count > 0;
        }
        catch (JsonException)
        {
            failedInside = true;
        }

        // The failing token was never counted: inside an array it is the next element.
        if (failedInside && stack.Count > 0 && stack[^1].IsArray)
        {
            var top = stack[^1];
            stack[^1] = (true, top.Name, top.Index + 1);
        }

        var path = new StringBuilder("$");
        for (var i = 0; i < stack.Count; i++)
        {
            var frame = stack[i];
            if (i > 0 && !stack[i - 1].IsArray && frame.Name.Length > 0)
            {
                path.Append('.').Append(frame.Name);
            }

            if (frame.IsArray && frame.Index >= 0)
            {
                path.Append('[').Append(frame.Index).Append(']');
            }
        }

        if (pendingProperty is not null)
        {
            path.Append('.').Append(pendingProperty);
        }

        return path.ToString();

        static void BeforeValue(List<(bool IsArray, string Name, int Index)> stack, ref string? property)
        {
            if (stack.Count > 0 && stack[^1].IsArray)
            {
                var top = stack[^1];
                stack[^1] = (true, top.Name, top.Index + 1);
            }
        }
    }
}
