using System.Text;

namespace MultiHeadServe.Tests.Hardening;

/// <summary>One hostile request: where it goes, what it carries, and whether it is framed by hand on a raw socket.</summary>
internal sealed record HostileRequest(string Method, string Path, string? ContentType, byte[] Body, string Kind, byte[]? RawFrame = null)
{
    public bool IsV2 => Path.StartsWith("/v2", StringComparison.Ordinal);

    public override string ToString() =>
        $"{Kind}: {Method} {Path} ({ContentType ?? "no type"}, {Body.Length} bytes) {Preview(RawFrame ?? Body)}";

    private static string Preview(byte[] bytes)
    {
        var text = Encoding.UTF8.GetString(bytes.AsSpan(0, Math.Min(bytes.Length, 160)));
        return new string([.. text.Select(c => char.IsControl(c) ? '·' : c)]);
    }
}

/// <summary>
/// A seeded generator of hostile requests over every public endpoint: valid bodies for each demo model, then broken
/// the ways clients and attackers break them — bytes cut, inserted or flipped, invalid UTF-8, lone surrogate
/// escapes, members given twice, deep or wide nesting, huge declared shapes, wrong types and numbers out of range,
/// wrong content types and multipart bodies, unknown models and heads, and framing broken on a raw socket
/// (malformed chunks, conflicting lengths). The same seed gives the same requests.
/// </summary>
internal sealed class HostileRequests(int seed, byte[] png)
{
    private static readonly string[] Models = ["ranking", "ranking-mtl", "shapes", "conversion"];
    private static readonly string[] HostileNames = ["nope", "..", "%2e%2e", "ranking%00", "ranking%0d%0aX", new string('m', 300), "%ff%fe", "r\u00e9", "shapes;drop"];

    private readonly Random _random = new(seed);
    private readonly string _image = Convert.ToBase64String(png);

    public HostileRequest Next()
    {
        var roll = _random.Next(100);
        return roll switch
        {
            < 5 => RawFraming(),
            < 10 => WrongRoute(),
            < 15 => WrongContentType(),
            _ => Mutated(),
        };
    }

    private HostileRequest Mutated()
    {
        var (path, body) = Seed();
        var text = body;
        var kind = "valid";
        switch (_random.Next(17))
        {
            case 0:
                kind = "duplicate member";
                text = DuplicateMember(text);
                break;
            case 1:
                kind = "lone surrogate";
                text = InsertIntoString(text, Pick(["\\ud800", "\\udc00", "\\udbff\\u0041", "\\ud800\\ud800"]));
                break;
            case 2:
                kind = "deep nesting";
                var depth = Pick([20, 31, 33, 64, 500, 5000]);
                text = ReplaceValue(text, new string('[', depth) + "1" + new string(']', depth));
                break;
            case 3:
                kind = "wide nesting";
                text = ReplaceValue(text, Nested(_random.Next(2, 5), _random.Next(50, 1400)));
                break;
            case 4:
                kind = "wrong type";
                text = ReplaceValue(text, Pick(["null", "true", "\"x\"", "{}", "[]", "-0", "1e400", "-1e400", "\"NaN\"", "123456789012345678901234567890", "[null]", "{\"a\":{}}"]));
                break;
            case 5:
                kind = "huge declared size";
                path = $"/v2/models/{Pick(["shapes", "ranking", "conversion"])}/infer";
                text = $"{{\"inputs\":[{{\"name\":\"{Pick(["image", "features", "x"])}\",\"datatype\":\"{Pick(["FP32", "FP64", "INT64", "BOOL", "FP16", "BYTES", "XX"])}\"," +
                    $"\"shape\":[{Pick(["100000,3,64,64", "2147483647,2147483647", "-1,12", "1,12", "0", "9223372036854775807,2", "1,3,64,64", "4294967296"])}],\"data\":[{Pick(["0", "", "[0]", "\"a\"", "1,2,3"])}]}}]}}";
                break;
            case 6:
                kind = "many instances";
                var n = Pick([0, 257, 1000, 5000]);
                text = "{\"instances\":[" + string.Join(',', Enumerable.Repeat("{\"user_id\":\"u0001\",\"item_id\":\"i0001\"}", n)) + "]}";
                break;
            case 7:
                kind = "invalid utf-8";
                var bytes = Encoding.UTF8.GetBytes(text).ToList();
                bytes.InsertRange(_random.Next(bytes.Count + 1), Pick<byte[]>([[0xc0, 0xaf], [0xff], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]]));
                return new HostileRequest("POST", path, "application/json", [.. bytes], kind);
            case 8:
                kind = "bytes cut";
                var cut = Encoding.UTF8.GetBytes(text);
                var start = _random.Next(cut.Length);
                var length = _random.Next(1, Math.Max(2, cut.Length - start));
                return new HostileRequest("POST", path, "application/json", [.. cut[..start], .. cut[Math.Min(cut.Length, start + length)..]], kind);
            case 9:
                kind = "bytes flipped";
                var flipped = Encoding.UTF8.GetBytes(text);
                for (var i = 0; i < 1 + _random.Next(4); i++)
                {
                    flipped[_random.Next(flipped.Length)] = (byte)_random.Next(256);
                }

                return new HostileRequest("POST", path, "application/json", flipped, kind);
            case 10:
                kind = "hostile heads";
                path += "?heads=" + Pick(["", ",", "click,click", "nope", "%ff", "click,nope", new string('h', 5000), "click&heads=dwell"]);
                break;
            case 11:
                kind = "hostile labels";
                path = $"/v1/models/{Pick(["ranking", "ranking-mtl"])}/evaluate";
                text = "{\"user_id\":\"u0042\",\"item_id\":\"i0007\",\"labels\":{\"dwell\":" +
                    Pick(["[1]", "[[1]]", "{}", "\"1\"", "[1e400]", "[null]", "[]", Nested(3, 1400), Nested(2, 1000), "[" + string.Join(',', Enumerable.Repeat("1", 3000)) + "]"]) +
                    "},\"weights\":" + Pick(["{\"dwell\":1}", "{\"dwell\":-1}", "{\"dwell\":1e400}", "{\"nope\":1}", "[]", "{\"dwell\":\"x\"}"]) + "}";
                break;
            case 12:
                kind = "hostile image";
                path = "/v1/models/shapes/predict";
                text = "{\"image\":\"" + Pick<string>([
                    "", "====", "not base64!", _image[..(_image.Length / 2)], Convert.ToBase64String(Encoding.ASCII.GetBytes("GIF89a")),
                    Convert.ToBase64String(png.Take(40).ToArray()), _image + _image, Convert.ToBase64String(new byte[3000]),
                ]) + "\"}";
                break;
            case 13:
                kind = "hostile keys";
                text = "{\"user_id\":" + Pick(["\"\"", "\"" + new string('u', 300) + "\"", "1.5", "-1", "\"u0042\\u0000\"", "\"' OR 1=1 --\"", "[\"u0042\"]", "{\"$gt\":\"\"}"]) + ",\"item_id\":\"i0007\"}";
                path = $"/v1/models/{Pick(["ranking", "ranking-mtl"])}/predict";
                break;
            case 14:
                kind = "empty or whitespace";
                text = Pick(["", " ", "\n", "{", "}", "[]", "null", "0", "\"\"", "{}"]);
                break;
            case 15:
                kind = "hostile output parameters";
                path = "/v2/models/ranking/infer";
                text = "{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,12],\"data\":[0,1,0,1,0,1,0,1,0,1,0,1]}]," +
                    "\"outputs\":[{\"name\":" + Pick(["\"click_logit\"", "\"revenue\"", "\"nope\"", "\"\"", "1"]) + ",\"parameters\":{\"classification\":" +
                    Pick(["0", "-1", "1", "3", "\"2\"", "1.5", "9223372036854775807", "1e300", "null", "{}", "[]"]) +
                    ",\"binary_data\":" + Pick(["true", "false", "\"x\""]) + "}}]}";
                break;
            default:
                break;
        }

        return new HostileRequest("POST", path, "application/json", Encoding.UTF8.GetBytes(text), kind);
    }

    /// <summary>A valid request to a random endpoint of a random demo model.</summary>
    private (string Path, string Body) Seed()
    {
        var model = Pick(Models);
        var row = model switch
        {
            "shapes" => $"{{\"image\":\"{_image}\"}}",
            "conversion" => "{\"features\":[1,2,3,4,5,6,7,8]}",
            _ => $"{{\"user_id\":\"u{_random.Next(1, 60):0000}\",\"item_id\":\"i{_random.Next(1, 60):0000}\"}}",
        };
        return _random.Next(6) switch
        {
            0 => ($"/v1/models/{model}/predict", $"{{\"instances\":[{row},{row}]}}"),
            1 => ($"/v1/models/{model}/heads/{Pick<string>(model == "shapes" ? ["class", "bbox"] : model == "conversion" ? ["conversion"] : ["click", "dwell"])}/predict", row),
            2 when model is "ranking" or "ranking-mtl" => ($"/v1/models/{model}/evaluate", "{\"user_id\":\"u0042\",\"item_id\":\"i0007\",\"labels\":{\"click\":[1],\"dwell\":[100],\"revenue\":[50]}}"),
            3 => ($"/v2/models/{(model == "shapes" ? "ranking" : model)}/infer",
                model == "conversion"
                    ? "{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,8],\"data\":[1,2,3,4,5,6,7,8]}]}"
                    : "{\"inputs\":[{\"name\":\"features\",\"datatype\":\"FP32\",\"shape\":[1,12],\"data\":[1,2,3,4,5,6,7,8,9,10,11,12]}],\"outputs\":[{\"name\":\"click_logit\"}]}"),
            _ => ($"/v1/models/{model}/predict", row),
        };
    }

    private HostileRequest WrongRoute()
    {
        var name = Pick(HostileNames);
        return _random.Next(10) switch
        {
            0 => new HostileRequest("GET", $"/v1/models/{name}", null, [], "unknown model"),
            1 => new HostileRequest("GET", $"/v2/models/{name}/ready", null, [], "unknown model"),
            2 => new HostileRequest("GET", $"/v2/models/{name}", null, [], "unknown model"),
            3 => new HostileRequest("POST", $"/v1/models/{name}/predict", "application/json", "{}"u8.ToArray(), "unknown model"),
            4 => new HostileRequest("POST", $"/v2/models/{name}/infer", "application/json", "{\"inputs\":[]}"u8.ToArray(), "unknown model"),
            5 => new HostileRequest("POST", $"/v1/models/ranking/heads/{name}/predict", "application/json", "{\"user_id\":\"u0042\",\"item_id\":\"i0007\"}"u8.ToArray(), "unknown head"),
            6 => new HostileRequest(Pick(["PUT", "DELETE", "PATCH"]), $"/v1/models/ranking/predict", "application/json", "{}"u8.ToArray(), "wrong method"),
            7 => new HostileRequest("GET", $"/v2/models/{name}/{Pick(["stats", "config", "versions/1/stats", "versions/1/config"])}", null, [], "unknown model"),
            8 => new HostileRequest("GET", $"/v2/models/ranking/versions/{Pick(HostileNames)}/{Pick(["stats", "config"])}", null, [], "unknown version"),
            _ => new HostileRequest("GET", Pick(["/v1/models", "/v2", "/v2/models/ranking", "/v2/health/ready", "/healthz", "/readyz", "/v1/models/ranking",
                "/v2/models/stats", "/v2/models/ranking/stats", "/v2/models/shapes/config"]), null, [], "read"),
        };
    }

    private HostileRequest WrongContentType()
    {
        var (path, body) = Seed();
        var type = Pick(["text/plain", "application/xml", "image/png", "image/jpeg", "image/webp", "multipart/form-data", "multipart/form-data; boundary=",
            "multipart/form-data; boundary=x", "application/json; charset=latin1", "application/x-www-form-urlencoded", ""]);
        var payload = type.StartsWith("image/", StringComparison.Ordinal) && _random.Next(2) == 0 ? png[..Math.Max(1, _random.Next(png.Length))] :
            type.StartsWith("multipart", StringComparison.Ordinal) ? Encoding.ASCII.GetBytes("--x\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.png\"\r\n\r\n" + body[..Math.Min(body.Length, 50)] + "\r\n--x") :
            Encoding.UTF8.GetBytes(body);
        return new HostileRequest("POST", path, type.Length == 0 ? null : type, payload, "content type");
    }

    /// <summary>Framing the server must refuse at once (truncated and slow bodies have a test of their own: they take seconds).</summary>
    private HostileRequest RawFraming()
    {
        var (path, body) = Seed();
        var bytes = Encoding.UTF8.GetBytes(body);
        var head = $"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\n";
        string frame = _random.Next(8) switch
        {
            0 => head + "Transfer-Encoding: chunked\r\n\r\n" + "zz\r\n" + body + "\r\n0\r\n\r\n",
            1 => head + "Transfer-Encoding: chunked\r\n\r\n" + $"{bytes.Length:x}\r\n" + body + "XX0\r\n\r\n",
            2 => head + "Transfer-Encoding: chunked\r\n\r\n" + "-5\r\n" + body + "\r\n0\r\n\r\n",
            3 => head + "Content-Length: 10\r\nContent-Length: 20\r\n\r\n" + body,
            4 => head + "Transfer-Encoding: chunked\r\n\r\n" + "ffffffffffffffffff\r\n" + body + "\r\n0\r\n\r\n",
            // The body as it is, declared compressed: the decompressor finds it is not.
            5 => head + $"Content-Encoding: {Pick(["gzip", "deflate", "br"])}\r\nContent-Length: {bytes.Length}\r\n\r\n" + body,
            6 => head + $"Content-Encoding: {Pick(["zstd", "gzip, br", "compress"])}\r\nContent-Length: {bytes.Length}\r\n\r\n" + body,
            _ => head + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + $"{bytes.Length:x}\r\n" + body + "\r\n0\r\n\r\n",
        };
        return new HostileRequest("POST", path, "application/json", bytes, "raw framing", Encoding.UTF8.GetBytes(frame));
    }

    private static string DuplicateMember(string json)
    {
        var colon = json.IndexOf("\":", StringComparison.Ordinal);
        if (colon < 0)
        {
            return json;
        }

        var open = json.LastIndexOf('"', colon - 1);
        var name = json[open..(colon + 2)];
        return json.Insert(open, name + "1,");
    }

    private string InsertIntoString(string json, string escape)
    {
        var quotes = Enumerable.Range(0, json.Length).Where(i => json[i] == '"').ToList();
        return quotes.Count == 0 ? json : json.Insert(quotes[_random.Next(quotes.Count)] + 1, escape);
    }

    /// <summary>The first value after a colon replaced by <paramref name="value"/>.</summary>
    private string ReplaceValue(string json, string value)
    {
        var colons = Enumerable.Range(0, json.Length).Where(i => json[i] == ':').ToList();
        if (colons.Count == 0)
        {
            return value;
        }

        var at = colons[_random.Next(colons.Count)] + 1;
        var end = at;
        var depth = 0;
        var inString = false;
        for (; end < json.Length; end++)
        {
            var c = json[end];
            if (inString)
            {
                inString = c != '"' || json[end - 1] == '\\';
                continue;
            }

            if (c == '"')
            {
                inString = true;
            }
            else if (c is '[' or '{')
            {
                depth++;
            }
            else if (c is ']' or '}')
            {
                if (depth == 0)
                {
                    break;
                }

                depth--;
            }
            else if (c == ',' && depth == 0)
            {
                break;
            }
        }

        return json[..at] + value + json[end..];
    }

    /// <summary>Arrays <paramref name="depth"/> deep whose first element nests further and which claim <paramref name="width"/> elements at each level.</summary>
    private static string Nested(int depth, int width)
    {
        var inner = "1";
        for (var d = 0; d < depth; d++)
        {
            inner = "[" + inner + string.Concat(Enumerable.Repeat(",1", d == 0 ? width - 1 : 0)) + "]";
        }

        return inner;
    }

    private T Pick<T>(T[] items) => items[_random.Next(items.Length)];
}
