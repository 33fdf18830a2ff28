using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using MultiHeadServe.Tests.Infrastructure;
using SkiaSharp;

namespace MultiHeadServe.Tests.Hardening;

/// <summary>
/// A request's images share one budget of decoded pixels (<c>Serve:MaxPixelsPerRequest</c>): the image that passes it
/// is refused with 413 naming it, from its header alone, before it is decoded; under the budget the request is served.
/// </summary>
public sealed class PixelBudgetTests
{
    private const string Predict = "/v1/models/shapes/predict";

    /// <summary>Room for three 64x64 images and a little more, not for four.</summary>
    private const int Budget = (3 * 64 * 64) + 100;

    [Fact]
    public async Task UploadsPastTheBudgetAnswer413NamingTheFirstImageOverItBeforeDecodingIt()
    {
        var png = Png(64, 64);
        var corrupt = CorruptBody(png);
        await using var app = Budgeted();
        using var client = app.CreateClient();

        using var underBudget = Form(png, png, png);
        var served = await client.PostAsync(Predict, underBudget);
        // The same corrupt image inside the budget is decoded and found broken: a 400, not a 413.
        using var corruptUnder = Form(png, png, corrupt);
        var broken = await client.PostAsync(Predict, corruptUnder);
        using var corruptOver = Form(png, png, png, corrupt, png);
        var over = await client.PostAsync(Predict, corruptOver);

        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(3, (await served.JsonAsync()).GetProperty("predictions").GetArrayLength());
        Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
        Assert.Equal("image[2]", (await broken.JsonAsync()).GetProperty("field").GetString());
        var problem = await over.JsonAsync();
        Assert.True(over.StatusCode == HttpStatusCode.RequestEntityTooLarge, problem.GetRawText());
        Assert.Equal("image[3]", problem.GetProperty("field").GetString());
        Assert.Contains($"budget of {Budget} pixels", Detail(problem), StringComparison.Ordinal);
        Assert.Contains("Serve:MaxPixelsPerRequest", Detail(problem), StringComparison.Ordinal);
    }

    [Fact]
    public async Task InstancesPastTheBudgetAnswer413NamingTheFirstImageOverItBeforeDecodingIt()
    {
        var png = Convert.ToBase64String(Png(64, 64));
        var small = Convert.ToBase64String(Png(16, 16));
        var corrupt = Convert.ToBase64String(CorruptBody(Png(64, 64)));
        await using var app = Budgeted();
        using var client = app.CreateClient();

        // 4,096 + 256 + 4,096 pixels fit in 12,388; the fourth image's 4,096 do not.
        var fourth = await client.PostJsonAsync(Predict, new { instances = new[] { new { image = png }, new { image = small }, new { image = png }, new { image = png } } });
        var over = await client.PostJsonAsync(Predict, new { instances = new[] { new { image = png }, new { image = png }, new { image = small }, new { image = corrupt }, new { image = png } } });
        var broken = await client.PostJsonAsync(Predict, new { instances = new[] { new { image = corrupt } } });

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, fourth.StatusCode);
        Assert.Equal("instances[3].image", (await fourth.JsonAsync()).GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
        var problem = await over.JsonAsync();
        Assert.True(over.StatusCode == HttpStatusCode.RequestEntityTooLarge, problem.GetRawText());
        Assert.Equal("instances[3].image", problem.GetProperty("field").GetString());
        Assert.Contains($"budget of {Budget} pixels", Detail(problem), StringComparison.Ordinal);

        var fits = await client.PostJsonAsync(Predict, new { instances = new[] { new { image = png }, new { image = png }, new { image = png } } });
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
        Assert.Equal(3, (await fits.JsonAsync()).GetProperty("predictions").GetArrayLength());
    }

    private static ServeFactory Budgeted() => new(new Dictionary<string, string?>
    {
        ["Serve:MaxPixelsPerRequest"] = Budget.ToString(System.Globalization.CultureInfo.InvariantCulture),
    });

    private static string Detail(JsonElement problem) => problem.GetProperty("detail").GetString() ?? "";

    /// <summary>A PNG of noise (so that its compressed data is long enough to damage).</summary>
    private static byte[] Png(int width, int height)
    {
        var random = new Random(width * 31 + height);
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                bitmap.SetPixel(x, y, new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256)));
            }
        }

        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>
    /// The same PNG with its header intact and its compressed pixel data overwritten: the size can be read, the
    /// pixels cannot be decoded. Refused for its size, it proves the budget was checked before decoding.
    /// </summary>
    private static byte[] CorruptBody(byte[] png)
    {
        var corrupt = png.ToArray();
        // Chunks after the 8-byte signature: length (4, big-endian), type (4), data, CRC (4). Every chunk before the
        // first IDAT stays, and so does the IDAT's own framing; its compressed data past the zlib header is ruined.
        for (var at = 8; at + 8 <= corrupt.Length;)
        {
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(corrupt.AsSpan(at));
            if (System.Text.Encoding.ASCII.GetString(corrupt, at + 4, 4) == "IDAT")
            {
                corrupt.AsSpan(at + 8 + 2, length - 2).Fill(0xFF);
                return corrupt;
            }

            at += 12 + length;
        }

        throw new InvalidOperationException("The PNG has no IDAT chunk.");
    }

    private static MultipartFormDataContent Form(params byte[][] images)
    {
        var form = new MultipartFormDataContent();
        for (var i = 0; i < images.Length; i++)
        {
            var part = new ByteArrayContent(images[i]);
            part.Headers.ContentType = MediaTypeHeaderValue.Parse("image/png");
            form.Add(part, "image", $"{i}.png");
        }

        return form;
    }
}
