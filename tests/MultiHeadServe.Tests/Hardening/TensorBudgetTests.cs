using System.Net;
using Microsoft.Extensions.Options;
using MultiHeadServe.Features;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Hardening;

/// <summary>
/// The feature tensors of all requests in flight share one budget (<c>Serve:MaxTensorBytesInFlight</c>): rows that can
/// never fit are a 413 saying how many would, rows that do not fit now a 429 with Retry-After, and every request gives
/// its share back however it ends.
/// </summary>
public sealed class TensorBudgetTests
{
    private const string Predict = "/v1/models/shapes/predict";

    [Fact]
    public async Task RacingTakesNeverHoldMoreThanTheLimitTogether()
    {
        // The counter behind this budget and the body budget: four threads take and give back shares at once.
        var counter = new BytesInFlight();
        const long Limit = 500;
        Assert.True(counter.TryTake(300, Limit, out _));
        Assert.False(counter.TryTake(201, Limit, out var before));
        Assert.Equal(300, before);
        counter.Give(300);
        long peak = 0;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                var bytes = 1 + ((i * 7) + t) % 300;
                if (!counter.TryTake(bytes, Limit, out var held))
                {
                    Assert.True(held + bytes > Limit, $"refused {bytes} with {held} held");
                    continue;
                }

                var now = counter.Held;
                InterlockedMax(ref peak, now);
                counter.Give(bytes);
            }
        })));

        Assert.True(peak <= Limit, $"{peak} bytes held together");
        Assert.Equal(0, counter.Held);

        static void InterlockedMax(ref long target, long value)
        {
            long seen;
            while (value > (seen = Interlocked.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen)
            {
            }
        }
    }

    [Fact]
    public void SharesAreTakenUntilTheBudgetIsFullAndGivenBackOnDispose()
    {
        var budget = new TensorBudget(Options.Create(new ServeOptions { MaxTensorBytesInFlight = 1L << 20 }));

        var first = budget.Rent(100, 1024, "instances");
        var second = budget.Rent(100, 1024, "instances");
        var full = Assert.Throws<FeatureRequestException>(() => budget.Rent(100, 1024, "instances"));
        Assert.Equal(429, full.Status);
        Assert.Equal(TimeSpan.FromSeconds(1), full.RetryAfter);
        Assert.Equal(800L * 1024, budget.Held);
        first.Dispose();
        first.Dispose();
        using var third = budget.Rent(100, 1024, "instances");
        var never = Assert.Throws<FeatureRequestException>(() => budget.Rent(300, 1024, "instances"));
        Assert.Equal(413, never.Status);
        Assert.Equal("instances", never.Field);
        Assert.Contains("send at most 256 rows", never.Message, StringComparison.Ordinal);
        second.Dispose();
        third.Dispose();
        Assert.Equal(0, budget.Held);
    }

    [Fact]
    public void ALargeTensorIsAllocatedToItsSizeAndNotKeptInThePool()
    {
        var budget = new TensorBudget(Options.Create(new ServeOptions { MaxTensorBytesInFlight = 64L << 20 }));
        var rows = (TensorBudget.PooledFloats / 1000) + 1;

        using (var large = budget.Rent(rows, 1000, "instances"))
        {
            Assert.Equal(rows * 1000, large.Buffer.Length);
        }

        using (var small = budget.Rent(10, 1000, "instances"))
        {
            // From the shared pool: a power of two at least as long.
            Assert.Equal(16384, small.Buffer.Length);
        }

        Assert.Equal(0, budget.Held);
    }

    [Fact]
    public async Task ThroughTheApiRowsPastTheBudgetAre413AndRowsThatDoNotFitNowAre429UntilTheBudgetFrees()
    {
        // shapes: 3x64x64 floats a row, 48 KiB; 1 MiB holds 21 rows.
        await using var app = new ServeFactory(new Dictionary<string, string?> { ["Serve:MaxTensorBytesInFlight"] = (1 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var client = app.CreateClient();
        var budget = app.Service<TensorBudget>();
        var png = await File.ReadAllBytesAsync(Path.Combine(RepositoryPaths.Model("shapes"), "samples", "circle.png"));
        var image = Convert.ToBase64String(png);

        var tooMany = await client.PostJsonAsync(Predict, new { instances = Enumerable.Repeat(new { image }, 30) });
        var problem = await tooMany.JsonAsync();
        Assert.True(tooMany.StatusCode == HttpStatusCode.RequestEntityTooLarge, problem.GetRawText());
        Assert.Equal("instances", problem.GetProperty("field").GetString());
        Assert.Contains("send at most 21 rows", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        var corrupt = await client.PostJsonAsync(Predict, new { instances = new[] { new { image }, new { image = "AAAA" } } });
        Assert.Equal(HttpStatusCode.BadRequest, corrupt.StatusCode);
        Assert.Equal(0, budget.Held);

        using (budget.Rent(20, 3 * 64 * 64, "instances"))
        {
            var busy = await client.PostJsonAsync(Predict, new { instances = new[] { new { image }, new { image } } });
            var refusal = await busy.JsonAsync();
            Assert.True(busy.StatusCode == HttpStatusCode.TooManyRequests, refusal.GetRawText());
            Assert.Equal("application/problem+json", busy.Content.Headers.ContentType?.MediaType);
            Assert.Equal("1", busy.Headers.GetValues("Retry-After").Single());
            Assert.Contains("Serve:MaxTensorBytesInFlight", refusal.GetProperty("detail").GetString(), StringComparison.Ordinal);

            using var form = new MultipartFormDataContent();
            form.Add(new ByteArrayContent(png) { Headers = { ContentType = new("image/png") } }, "image", "a.png");
            form.Add(new ByteArrayContent(png) { Headers = { ContentType = new("image/png") } }, "image", "b.png");
            var upload = await client.PostAsync(Predict, form);
            Assert.Equal(HttpStatusCode.TooManyRequests, upload.StatusCode);
            Assert.Equal("image", (await upload.JsonAsync()).GetProperty("field").GetString());

            // One row still fits.
            Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync(Predict, new { image })).StatusCode);
        }

        var freed = await client.PostJsonAsync(Predict, new { instances = Enumerable.Repeat(new { image }, 21) });
        Assert.Equal(HttpStatusCode.OK, freed.StatusCode);
        Assert.Equal(21, (await freed.JsonAsync()).GetProperty("predictions").GetArrayLength());
        Assert.Equal(0, budget.Held);
    }
}
