using System.Net;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Observability;

/// <summary>Every API request carries a W3C trace id: the caller's when it sends traceparent, a new one otherwise.</summary>
public sealed class RequestTraceTests
{
    [Fact]
    public async Task AProblemCarriesTheCallersTraceIdOrANewOne()
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        using var traced = new HttpRequestMessage(HttpMethod.Post, "/v1/models/ranking/predict")
        {
            Content = new StringContent("""{"user_id": "u0042"}""", System.Text.Encoding.UTF8, "application/json"),
        };
        traced.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        var withParent = await client.SendAsync(traced);
        Assert.Equal(HttpStatusCode.BadRequest, withParent.StatusCode);
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", (await withParent.JsonAsync()).GetProperty("traceId").GetString());

        var first = (await (await client.PostRawAsync("/v1/models/ranking/predict", """{"user_id": "u0042"}""")).JsonAsync()).GetProperty("traceId").GetString()!;
        var second = (await (await client.PostRawAsync("/v1/models/ranking/predict", """{"user_id": "u0042"}""")).JsonAsync()).GetProperty("traceId").GetString()!;
        Assert.Matches("^[0-9a-f]{32}$", first);
        Assert.NotEqual(first, second);
        Assert.NotEqual(new string('0', 32), first);
    }
}
