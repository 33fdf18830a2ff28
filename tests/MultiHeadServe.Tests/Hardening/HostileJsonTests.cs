using System.Net;
using System.Net.Http.Headers;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Hardening;

/// <summary>The reproducers that once answered 500: each is now a 400 naming where in the body the problem is.</summary>
public sealed class HostileJsonTests
{
    public static TheoryData<string, byte[], string> Bodies() => new()
    {
        { "/v1/models/ranking/evaluate", """{"user_id":"u0042","item_id":"i0007","labels":{"dwell":[1],"dwell":[2]}}"""u8.ToArray(), "$.labels.dwell" },
        { "/v1/models/ranking/evaluate", """{"user_id":"u0042","item_id":"i0007","labels":{"dwell":[1]},"weights":{"dwell":1,"dwell":2}}"""u8.ToArray(), "$.weights.dwell" },
        { "/v1/models/ranking/predict", [.. "{\"user_id\":\"u"u8, 0xc0, 0xaf, .. "\",\"item_id\":\"i0001\"}"u8], "$" },
        { "/v1/models/ranking/predict", [.. "{\"user_"u8, 0xff, .. "id\":\"u1\",\"item_id\":\"i0001\"}"u8], "$" },
        { "/v1/models/ranking/predict", """{"user_id":"u\ud800","item_id":"i0001"}"""u8.ToArray(), "$.user_id" },
        { "/v1/models/ranking/predict", """{"user_id":"u0001","item_id":"i0001","heads":["cl\udc00"]}"""u8.ToArray(), "$.heads[0]" },
        { "/v1/models/ranking/predict", """{"instances":[{"user_id":"u0001","item_id":"i0001"},{"user\ud800_id":"u1","item_id":"i0001"}]}"""u8.ToArray(), "$.instances[1]" },
        { "/v1/models/shapes/predict", """{"image":"\ud800AAAA"}"""u8.ToArray(), "$.image" },
        { "/v2/models/ranking/infer", """{"inputs":[{"name":"features","name":"x","datatype":"FP32","shape":[1,12],"data":[1,2,3,4,5,6,7,8,9,10,11,12]}]}"""u8.ToArray(), "$.inputs[0].name" },
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task AnswersA400NamingTheField(string url, byte[] body, string field)
    {
        await using var app = new ServeFactory();
        using var client = app.CreateClient();
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        var response = await client.PostAsync(url, content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.JsonAsync();
        Assert.Equal(field, problem.GetProperty("field").GetString());
        if (url.StartsWith("/v2", StringComparison.Ordinal))
        {
            Assert.False(string.IsNullOrEmpty(problem.GetProperty("error").GetString()));
        }
        else
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
    }
}
