using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace MultiHeadServe.Tests.Infrastructure;

internal static class HttpJson
{
    public static Task<HttpResponseMessage> PostJsonAsync(this HttpClient client, string url, object body) =>
        client.PostAsJsonAsync(url, body);

    public static Task<HttpResponseMessage> PostRawAsync(this HttpClient client, string url, string body, string contentType = "application/json") =>
        client.PostAsync(url, new StringContent(body, Encoding.UTF8, contentType));

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement;
    }

    public static double[] Numbers(this JsonElement array) => array.EnumerateArray().Select(e => e.GetDouble()).ToArray();

    public static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    public static double[] Softmax(IReadOnlyList<float> logits)
    {
        var max = logits.Max();
        var exp = logits.Select(l => Math.Exp(l - max)).ToArray();
        var sum = exp.Sum();
        return exp.Select(e => e / sum).ToArray();
    }
}
