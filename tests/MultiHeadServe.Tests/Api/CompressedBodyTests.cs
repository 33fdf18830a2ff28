using System.IO.Compression;
using System.Net;
using System.Text;
using MultiHeadServe.Tests.Infrastructure;
using static MultiHeadServe.Tests.Infrastructure.OpenInferenceClients;

namespace MultiHeadServe.Tests.Api;

/// <summary>
/// Request bodies compressed with gzip, deflate or Brotli (Content-Encoding), as Triton's clients send them with request
/// compression on: the same answers as the plain body, the size limit counted after decompression, and a coding the
/// service does not undo or data that is not what it says answered as the client's mistake.
/// </summary>
public sealed class CompressedBodyTests
{
    private const string Row = """{"user_id":"u0042","item_id":"i0007"}""";

    [Theory]
    [InlineData("gzip")]
    [InlineData("deflate")]
    [InlineData("br")]
    public async Task ACompressedBodyGetsTheAnswerOfThePlainOneOnV1AndOnV2Binary(string encoding)
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        float[] features = [0.5f, 1, 0, 2, 0.25f, 1, 0, 0, 1, 0.75f, 0.5f, 1];
        object header = new
        {
            inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 1, features.Length }, parameters = new { binary_data_size = features.Length * 4 } } },
        };

        var plain = await (await client.PostRawAsync("/v1/models/ranking/predict", Row)).JsonAsync();
        var compressed = await client.PostAsync("/v1/models/ranking/predict", Compressed(Encoding.UTF8.GetBytes(Row), encoding, "application/json"));
        using var plainBinary = BinaryBody(header, Bytes(features));
        var plainTensor = await (await client.PostAsync("/v2/models/ranking/infer", plainBinary)).Content.ReadAsStringAsync();
        using var binary = BinaryBody(header, Bytes(features));
        var length = binary.Headers.GetValues("Inference-Header-Content-Length").Single();
        var compressedBinary = Compressed(await binary.ReadAsByteArrayAsync(), encoding, "application/octet-stream");
        compressedBinary.Headers.Add("Inference-Header-Content-Length", length);
        var tensor = await client.PostAsync("/v2/models/ranking/infer", compressedBinary);

        Assert.Equal(HttpStatusCode.OK, compressed.StatusCode);
        Assert.Equal(plain.GetProperty("heads").GetRawText(), (await compressed.JsonAsync()).GetProperty("heads").GetRawText());
        var tensorText = await tensor.Content.ReadAsStringAsync();
        Assert.True(tensor.StatusCode == HttpStatusCode.OK, tensorText);
        Assert.Equal(plainTensor, tensorText);
        Assert.Contains("\"outputs\"", tensorText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ACodingTheServiceDoesNotUndoIs415AndDataThatIsNotWhatItSaysIs400()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        var garbage = Enumerable.Range(0, 100).Select(i => (byte)((i * 37) + 11)).ToArray();

        var zstd = new ByteArrayContent(garbage) { Headers = { ContentType = new("application/json") } };
        zstd.Headers.ContentEncoding.Add("zstd");
        var unknown = await client.PostAsync("/v1/models/ranking/predict", zstd);
        var problem = await unknown.JsonAsync();
        Assert.True(unknown.StatusCode == HttpStatusCode.UnsupportedMediaType, problem.GetRawText());
        Assert.Equal("Content-Encoding", problem.GetProperty("field").GetString());

        foreach (var encoding in new[] { "gzip", "deflate", "br" })
        {
            var corrupt = new ByteArrayContent(garbage) { Headers = { ContentType = new("application/json") } };
            corrupt.Headers.ContentEncoding.Add(encoding);
            var v1 = await client.PostAsync("/v1/models/ranking/predict", corrupt);
            var v1Problem = await v1.JsonAsync();
            Assert.True(v1.StatusCode == HttpStatusCode.BadRequest, $"{encoding}: {v1Problem.GetRawText()}");
            Assert.Equal("application/problem+json", v1.Content.Headers.ContentType?.MediaType);
            Assert.Equal("Content-Encoding", v1Problem.GetProperty("field").GetString());

            var again = new ByteArrayContent(garbage) { Headers = { ContentType = new("application/json") } };
            again.Headers.ContentEncoding.Add(encoding);
            var v2 = await client.PostAsync("/v2/models/ranking/infer", again);
            Assert.Equal(HttpStatusCode.BadRequest, v2.StatusCode);
            Assert.Contains("decompressed", (await v2.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task TheSizeLimitCountsTheDecompressedBody()
    {
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Serve:MaxRequestBytes"] = "65536" });
        using var client = app.CreateClient();
        // 200 KB of JSON in about 1 KB of gzip.
        var large = Encoding.UTF8.GetBytes("{\"features\":[" + string.Join(",", Enumerable.Repeat("1", 100_000)) + "]}");

        var response = await client.PostAsync("/v1/models/ranking/predict", Compressed(large, "gzip", "application/json"));

        var problem = await response.JsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.RequestEntityTooLarge, problem.GetRawText());
        Assert.Contains("65536 bytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static ByteArrayContent Compressed(byte[] body, string encoding, string contentType)
    {
        using var buffer = new MemoryStream();
        using (Stream compressor = encoding switch
        {
            "gzip" => new GZipStream(buffer, CompressionLevel.Optimal, leaveOpen: true),
            "deflate" => new ZLibStream(buffer, CompressionLevel.Optimal, leaveOpen: true),
            _ => new BrotliStream(buffer, CompressionLevel.Optimal, leaveOpen: true),
        })
        {
            compressor.Write(body);
        }

        var content = new ByteArrayContent(buffer.ToArray()) { Headers = { ContentType = new(contentType) } };
        content.Headers.ContentEncoding.Add(encoding);
        return content;
    }
}
