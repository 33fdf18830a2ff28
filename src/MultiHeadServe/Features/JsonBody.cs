using System.Text;
using System.Text.Json;

namespace MultiHeadServe.Features;

/// <summary>Parses a request body, reporting malformed JSON with the JSON path where it broke.</summary>
internal static class JsonBody
{
    // A member given twice is refused rather than one of the two silently winning (or a later dictionary throwing).
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 32, AllowDuplicateProperties = false };

    public static JsonDocument Parse(ReadOnlyMemory<byte> body)
    {
        // RFC 8259 lets a parser ignore a byte order mark, and some clients (Windows PowerShell's) send one.
        if (body.Span.StartsWith("\uFEFF"u8))
        {
            body = body[3..];
        }

        // The parser checks structure, not the text inside strings: bytes that are not UTF-8 would surface later as
        // an exception wherever a string is read. One vectorised pass over the body refuses them here.
        if (!System.Text.Unicode.Utf8.IsValid(body.Span))
        {
            throw FeatureRequestException.BadField("$", $"The body is not valid UTF-8 (byte {FirstInvalidUtf8(body.Span) + 1}).");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, DocumentOptions);
        }
        catch (JsonException ex) when (ex.LineNumber is null && DuplicateMember(body.Span) is { } duplicate)
        {
            throw FeatureRequestException.BadField(duplicate.Path, $"'{duplicate.Name}' is given twice in {duplicate.Parent}; give each member once.");
        }
        catch (JsonException ex)
        {
            var path = PathAtError(body.Span);
            throw FeatureRequestException.BadField(path,
                $"The body is not valid JSON at {path} (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}): {FirstSentence(ex.Message)}");
        }
        catch (InvalidOperationException)
        {
            // The duplicate check reads member names, and one of them is not valid Unicode: find which.
            using var lenient = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = DocumentOptions.MaxDepth });
            RejectUnreadableStrings(lenient.RootElement, "$");
            throw FeatureRequestException.BadField("$", "The body holds text that is not valid Unicode.");
        }

        // Escapes such as \ud800 can spell a lone surrogate, which no string can hold. Bodies with \u escapes are
        // rare (images are base64): only they are walked, reading each escaped string once.
        if (body.Span.IndexOf("\\u"u8) >= 0)
        {
            try
            {
                RejectUnreadableStrings(document.RootElement, "$");
            }
            catch
            {
                document.Dispose();
                throw;
            }
        }

        return document;
    }

    /// <summary>The first member given twice in one object, with its path, or null. Only called for a body refused as such.</summary>
    private static (string Path, string Parent, string Name)? DuplicateMember(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = DocumentOptions.MaxDepth });
        var frames = new Stack<(string Path, HashSet<string>? Names, int Index)>();
        string? pending = null;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                    var (path, names, _) = frames.Peek();
                    pending = reader.GetString()!;
                    if (!names!.Add(pending))
                    {
                        return ($"{path}.{pending}", path, pending);
                    }

                    continue;
                case JsonTokenType.StartObject:
                case JsonTokenType.StartArray:
                    var here = Here(frames, pending);
                    frames.Push((here, reader.TokenType == JsonTokenType.StartObject ? new HashSet<string>(StringComparer.Ordinal) : null, 0));
                    pending = null;
                    continue;
                case JsonTokenType.EndObject:
                case JsonTokenType.EndArray:
                    frames.Pop();
                    continue;
                default:
                    _ = Here(frames, pending);
                    pending = null;
                    continue;
            }
        }

        return null;

        // The path of the value starting now, counting it as the next element of an array.
        static string Here(Stack<(string Path, HashSet<string>? Names, int Index)> frames, string? property)
        {
            if (frames.Count == 0)
            {
                return "$";
            }

            var (path, names, index) = frames.Pop();
            frames.Push((path, names, names is null ? index + 1 : index));
            return names is null ? $"{path}[{index}]" : $"{path}.{property}";
        }
    }

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var offset = 0;
        while (offset < bytes.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes[offset..], out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                return offset;
            }

            offset += consumed;
        }

        return offset;
    }

    private static void RejectUnreadableStrings(JsonElement root, string path)
    {
        if (FindUnreadable(root) is { } where)
        {
            var at = path + where;
            throw FeatureRequestException.BadField(at, $"The text at {at} is not valid Unicode (a lone surrogate escape).");
        }
    }

    /// <summary>
    /// The path (below <paramref name="element"/>) of the first member name or string whose escapes do not spell
    /// valid Unicode, or null. Only text that holds a backslash is decoded; paths are made only on the way out.
    /// </summary>
    private static string? FindUnreadable(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (System.Runtime.InteropServices.JsonMarshal.GetRawUtf8PropertyName(property).IndexOf((byte)'\\') >= 0 && !Readable(property))
                    {
                        return "";
                    }

                    if (FindUnreadable(property.Value) is { } below)
                    {
                        return $".{property.Name}{below}";
                    }
                }

                return null;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (FindUnreadable(item) is { } below)
                    {
                        return $"[{index}]{below}";
                    }

                    index++;
                }

                return null;
            case JsonValueKind.String:
                return System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(element).IndexOf((byte)'\\') >= 0 && !Readable(element) ? "" : null;
            default:
                return null;
        }

        static bool Readable(object value)
        {
            try
            {
                _ = value is JsonProperty property ? property.Name : ((JsonElement)value).GetString();
                return true;
            }
            catch (InvalidOperationException)
            {
                return false;
            }
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
