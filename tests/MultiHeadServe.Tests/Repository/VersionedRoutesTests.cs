using System.Net;
using System.Text.Json.Nodes;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Repository;

/// <summary>
/// Every versioned route, on a model serving versions 1 and 2 (3 is corrupt, 4 is not selected by the policy), with
/// each status the Open Inference Protocol defines for it: 200, and 4xx with its <c>{"error": …}</c> (readiness: 400
/// for a version that is there but not ready, as Triton answers; 404 for what does not exist).
/// </summary>
public sealed class VersionedRoutesTests(VersionedRoutesTests.Service service) : IClassFixture<VersionedRoutesTests.Service>
{
    private readonly HttpClient _client = service.Client;
    private readonly float[] _row = service.Row;

    [Theory]
    [InlineData("/v2/models/ranking/versions/1/ready", HttpStatusCode.OK, true)]
    [InlineData("/v2/models/ranking/versions/2/ready", HttpStatusCode.OK, true)]
    [InlineData("/v2/models/ranking/ready", HttpStatusCode.OK, true)]
    [InlineData("/v2/models/ranking/versions/3/ready", HttpStatusCode.BadRequest, false)] // refused at load
    [InlineData("/v2/models/ranking/versions/4/ready", HttpStatusCode.BadRequest, false)] // not selected by the policy
    public async Task VersionReadinessIsTheStatusCode(string url, HttpStatusCode status, bool ready)
    {
        using var response = await _client.GetAsync(url);

        Assert.Equal(status, response.StatusCode);
        var body = await response.JsonAsync();
        Assert.Equal("ranking", body.GetProperty("name").GetString());
        Assert.Equal(ready, body.GetProperty("ready").GetBoolean());
    }

    [Theory]
    [InlineData("/v2/models/ranking/versions/9/ready", "'9'")]
    [InlineData("/v2/models/ranking/versions/x/ready", "'x'")]
    [InlineData("/v2/models/nope/versions/1/ready", "'nope'")]
    [InlineData("/v2/models/ranking/versions/3", "'3'")]
    [InlineData("/v2/models/ranking/versions/4", "'4'")]
    [InlineData("/v2/models/nope/versions/1", "'nope'")]
    public async Task UnknownModelsAndVersionsAre404WithTheProtocolsError(string url, string named)
    {
        using var response = await _client.GetAsync(url);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains(named, (await response.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task VersionMetadataListsTheServedVersions()
    {
        using var response = await _client.GetAsync("/v2/models/ranking/versions/1");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.JsonAsync();
        Assert.Equal("ranking", body.GetProperty("name").GetString());
        Assert.Equal(["1", "2"], body.GetProperty("versions").EnumerateArray().Select(v => v.GetString()));
        Assert.Equal("features", body.GetProperty("inputs")[0].GetProperty("name").GetString());
    }

    [Theory]
    [InlineData("1")]
    [InlineData("2")]
    public async Task VersionInferRunsThatVersion(string version)
    {
        using var response = await _client.PostJsonAsync($"/v2/models/ranking/versions/{version}/infer", Tensor(_row));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(version, (await response.JsonAsync()).GetProperty("model_version").GetString());
    }

    [Theory]
    [InlineData("/v2/models/ranking/versions/3/infer", "application/json", HttpStatusCode.NotFound, "version")]
    [InlineData("/v2/models/nope/versions/1/infer", "application/json", HttpStatusCode.NotFound, "model")]
    [InlineData("/v2/models/ranking/versions/1/infer", "text/plain", HttpStatusCode.UnsupportedMediaType, null)]
    public async Task VersionInferErrorsAreTheProtocolsError(string url, string contentType, HttpStatusCode status, string? field)
    {
        using var response = await _client.PostRawAsync(url, System.Text.Json.JsonSerializer.Serialize(Tensor(_row)), contentType);

        Assert.Equal(status, response.StatusCode);
        var body = await response.JsonAsync();
        Assert.False(string.IsNullOrEmpty(body.GetProperty("error").GetString()));
        if (field is not null)
        {
            Assert.Equal(field, body.GetProperty("field").GetString());
        }
    }

    [Fact]
    public async Task ABadTensorOnAVersionIs400()
    {
        using var response = await _client.PostRawAsync("/v2/models/ranking/versions/1/infer", """{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP32","data":[1,2]}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("inputs[0].shape", (await response.JsonAsync()).GetProperty("field").GetString());
    }

    [Theory]
    [InlineData("/v1/models/ranking/versions/1/predict", 1)]
    [InlineData("/v1/models/ranking/versions/2/predict", 2)]
    [InlineData("/v1/models/ranking/predict", 2)]
    [InlineData("/v1/models/ranking/versions/1/heads/click/predict", 1)]
    public async Task V1VersionRoutesRunThatVersion(string url, int version)
    {
        using var response = await _client.PostJsonAsync(url, new { user_id = "u0042", item_id = "i0007" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(version, (await response.JsonAsync()).GetProperty("version").GetInt32());
    }

    [Fact]
    public async Task V1VersionEvaluateRunsThatVersion()
    {
        using var response = await _client.PostJsonAsync("/v1/models/ranking/versions/1/evaluate",
            new { user_id = "u0042", item_id = "i0007", labels = new { click = new[] { 1 } } });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (await response.JsonAsync()).GetProperty("version").GetInt32());
    }

    [Theory]
    [InlineData("/v1/models/ranking/versions/3/predict")]
    [InlineData("/v1/models/ranking/versions/4/heads/click/predict")]
    [InlineData("/v1/models/ranking/versions/0/evaluate")]
    public async Task V1VersionsNotServedAre404ProblemsNamingTheVersion(string url)
    {
        using var response = await _client.PostJsonAsync(url, new { user_id = "u0042", item_id = "i0007", labels = new { click = new[] { 1 } } });

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var problem = await response.JsonAsync();
        Assert.Equal("version", problem.GetProperty("field").GetString());
        Assert.Contains("Served versions: 1, 2", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static object Tensor(float[] row) => new { inputs = new[] { new { name = "features", shape = new[] { 1, row.Length }, datatype = "FP32", data = row } } };

    /// <summary>One app for the class: no test changes it.</summary>
    public sealed class Service : IAsyncLifetime
    {
        private readonly TempRepository _repository = new TempRepository()
            .With("ranking", manifest => manifest["versionPolicy"] = new JsonObject { ["specific"] = new JsonObject { ["versions"] = new JsonArray(1, 2, 3) } });

        public ServeFactory App { get; private set; } = null!;

        public HttpClient Client { get; private set; } = null!;

        public float[] Row { get; } = ReferenceData.Load("ranking").InputRow("features", 0);

        public Task InitializeAsync()
        {
            var one = Path.Combine(_repository.Path, "ranking", "1");
            foreach (var version in new[] { "2", "3", "4" })
            {
                var target = Directory.CreateDirectory(Path.Combine(_repository.Path, "ranking", version));
                foreach (var file in Directory.EnumerateFiles(one))
                {
                    File.Copy(file, Path.Combine(target.FullName, Path.GetFileName(file)));
                }
            }

            File.WriteAllBytes(Path.Combine(_repository.Path, "ranking", "3", "click.onnx"), [8, 1, 18, 3]);
            App = new ServeFactory(_repository.Settings(("ModelRepository:PollIntervalSeconds", "0")));
            Client = App.CreateClient();
            return Task.CompletedTask;
        }

        public async Task DisposeAsync()
        {
            Client.Dispose();
            await App.DisposeAsync();
            _repository.Dispose();
        }
    }
}
