using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Grpc.Net.Client;
using MultiHeadServe.Api.Grpc;

namespace MultiHeadServe.Tests.Infrastructure;

/// <summary>
/// Clients of the Open Inference Protocol as KServe's and Triton's users have them: the gRPC client generated from
/// the protocol's .proto, and REST requests with the binary tensor data extension.
/// </summary>
internal static class OpenInferenceClients
{
    /// <summary>A gRPC channel to the in-memory app (its test server speaks HTTP/2 semantics and trailers).</summary>
    public static GrpcChannel Channel(ServeFactory app) =>
        GrpcChannel.ForAddress(app.Server.BaseAddress, new GrpcChannelOptions { HttpHandler = app.Server.CreateHandler() });

    public static GRPCInferenceService.GRPCInferenceServiceClient Client(GrpcChannel channel) => new(channel);

    /// <summary>A REST body of the binary extension: the JSON header, then each tensor's bytes.</summary>
    public static HttpContent BinaryBody(object header, params byte[][] tensors)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        var body = new byte[json.Length + tensors.Sum(t => t.Length)];
        json.CopyTo(body, 0);
        var offset = json.Length;
        foreach (var tensor in tensors)
        {
            tensor.CopyTo(body, offset);
            offset += tensor.Length;
        }

        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.Add("Inference-Header-Content-Length", json.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return content;
    }

    /// <summary>
    /// A response of the binary extension split up: the JSON header and, per output name, its bytes (binary outputs)
    /// or null (outputs given as JSON data).
    /// </summary>
    public static async Task<(JsonElement Header, Dictionary<string, byte[]?> Binary)> ReadBinaryAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsByteArrayAsync();
        var length = response.Headers.TryGetValues("Inference-Header-Content-Length", out var values) ? int.Parse(values.Single(), System.Globalization.CultureInfo.InvariantCulture) : body.Length;
        var header = JsonDocument.Parse(Encoding.UTF8.GetString(body, 0, length)).RootElement;
        var binary = new Dictionary<string, byte[]?>(StringComparer.Ordinal);
        var offset = length;
        foreach (var output in header.GetProperty("outputs").EnumerateArray())
        {
            var name = output.GetProperty("name").GetString()!;
            if (output.TryGetProperty("parameters", out var parameters) && parameters.TryGetProperty("binary_data_size", out var size))
            {
                binary[name] = body.AsSpan(offset, size.GetInt32()).ToArray();
                offset += size.GetInt32();
            }
            else
            {
                binary[name] = null;
            }
        }

        Assert.Equal(body.Length, offset);
        return (header, binary);
    }

    public static byte[] Bytes(float[] values)
    {
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return bytes;
    }

    public static float[] Floats(ReadOnlySpan<byte> bytes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray();

    public static long[] Longs(ReadOnlySpan<byte> bytes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(bytes).ToArray();

    /// <summary>The bit patterns of floats, so equality is bit-exact (and NaN-safe).</summary>
    public static int[] Bits(IEnumerable<float> values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
}
