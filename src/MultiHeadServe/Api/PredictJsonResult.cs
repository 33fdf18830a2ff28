using System.Buffers;
using System.Text.Json;
using MultiHeadServe.Features;
using MultiHeadServe.Heads;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;

namespace MultiHeadServe.Api;

/// <summary>
/// The predict routes' 200 response (<see cref="PredictResponse"/>, or <see cref="HeadPredictResponse"/> for one
/// head), written straight from the run's outputs: each head is decoded and written as it comes, with property names
/// encoded once, into a buffer reused by the thread, then copied to the response with its length. No response
/// records, dictionaries or serializer metadata per request. Everything is decoded before a byte is sent, so a head
/// that cannot be decoded still fails the request cleanly. <c>PredictJsonTests</c> holds the bytes to what the
/// serializer writes for the records.
/// </summary>
internal sealed class PredictJsonResult(FetchedFeatures features, IReadOnlyList<HeadSpec> heads, InferenceResult result, string? singleHead) : IResult
{
    private const int KeptBufferBytes = 1 << 20;

    private static readonly JsonEncodedText ModelName = JsonEncodedText.Encode("model");
    private static readonly JsonEncodedText VersionName = JsonEncodedText.Encode("version");
    private static readonly JsonEncodedText HeadName = JsonEncodedText.Encode("head");
    private static readonly JsonEncodedText HeadsName = JsonEncodedText.Encode("heads");
    private static readonly JsonEncodedText PredictionName = JsonEncodedText.Encode("prediction");
    private static readonly JsonEncodedText PredictionsName = JsonEncodedText.Encode("predictions");
    private static readonly JsonEncodedText TimingsName = JsonEncodedText.Encode("timings");
    private static readonly JsonEncodedText FetchMsName = JsonEncodedText.Encode("fetchMs");
    private static readonly JsonEncodedText QueueMsName = JsonEncodedText.Encode("queueMs");
    private static readonly JsonEncodedText InferenceMsName = JsonEncodedText.Encode("inferenceMs");
    private static readonly JsonEncodedText BatchRowsName = JsonEncodedText.Encode("batchRows");

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        // Written and copied without an await in between: the thread's buffer is free again when this returns.
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        var writer = t_writer ??= new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true });
        writer.Reset(buffer);
        try
        {
            Write(writer, features, heads, result, singleHead);
            writer.Flush();
            var response = httpContext.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/json; charset=utf-8";
            response.ContentLength = buffer.WrittenCount;
            var body = response.BodyWriter;
            var written = buffer.WrittenSpan;
            while (!written.IsEmpty)
            {
                var span = body.GetSpan(Math.Min(written.Length, 64 * 1024));
                var n = Math.Min(span.Length, written.Length);
                written[..n].CopyTo(span);
                body.Advance(n);
                written = written[n..];
            }
        }
        finally
        {
            buffer.ResetWrittenCount();
            writer.Reset(Stream.Null);
            if (buffer.Capacity > KeptBufferBytes)
            {
                t_buffer = null; // a rare large answer does not stay pinned to the thread
            }
        }

        return httpContext.Response.BodyWriter.FlushAsync(httpContext.RequestAborted).AsTask();
    }

    /// <summary>The response object; <paramref name="singleHead"/> set: the per-head shape.</summary>
    internal static void Write(Utf8JsonWriter writer, FetchedFeatures features, IReadOnlyList<HeadSpec> heads, InferenceResult result, string? singleHead)
    {
        var model = features.Model;
        writer.WriteStartObject();
        writer.WriteString(ModelName, model.Name);
        writer.WriteNumber(VersionName, model.Version);
        if (singleHead is not null)
        {
            writer.WriteString(HeadName, singleHead);
        }

        if (features.IsSingleRow)
        {
            writer.WritePropertyName(singleHead is null ? HeadsName : PredictionName);
            WriteRow(writer, features, heads, result, 0, singleHead is null);
        }
        else
        {
            writer.WriteStartArray(PredictionsName);
            for (var r = 0; r < features.Rows; r++)
            {
                if (singleHead is null)
                {
                    writer.WriteStartObject();
                    writer.WritePropertyName(HeadsName);
                    WriteRow(writer, features, heads, result, r, named: true);
                    writer.WriteEndObject();
                }
                else
                {
                    WriteRow(writer, features, heads, result, r, named: false);
                }
            }

            writer.WriteEndArray();
        }

        writer.WriteStartObject(TimingsName);
        writer.WriteNumber(FetchMsName, Math.Round(features.FetchMilliseconds, 3));
        writer.WriteNumber(QueueMsName, Math.Round(result.QueueMilliseconds, 3));
        writer.WriteNumber(InferenceMsName, Math.Round(result.RunMilliseconds, 3));
        writer.WriteNumber(BatchRowsName, result.BatchRows);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>One row's heads: an object keyed by head name, or (one head, <paramref name="named"/> false) the head's value alone.</summary>
    private static void WriteRow(Utf8JsonWriter writer, FetchedFeatures features, IReadOnlyList<HeadSpec> heads, InferenceResult result, int row, bool named)
    {
        var model = features.Model;
        var context = new DecodeContext(features.ImageSizes[row], model.InputImageSize);
        if (named)
        {
            writer.WriteStartObject();
        }

        foreach (var head in heads)
        {
            var decoded = model.Decoders[head.Name].Decode(result.Outputs[head.Output].Row(row), context);
            if (named)
            {
                writer.WritePropertyName(head.Name);
            }

            HeadResultJson.Write(writer, decoded);
        }

        if (named)
        {
            writer.WriteEndObject();
        }
    }
}
