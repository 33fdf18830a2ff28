using System.Net;
using MultiHeadServe.Tests.Infrastructure;

namespace MultiHeadServe.Tests.Observability;

/// <summary>
/// /metrics as Prometheus scrapes it, with exact counts. Not run beside other tests: OpenTelemetry listens to meters
/// by name, so measurements of another app in this process would be counted too.
/// </summary>
[Collection(nameof(ExactMetrics))]
public sealed partial class MetricsExpositionTests
{
    [Fact]
    public async Task EveryRequestFetchAndRunIsCountedExactlyForV1AndV2()
    {
        var ranking = ReferenceData.Load("ranking");
        var shapes = ReferenceData.Load("shapes");
        await using var app = new ServeFactory();
        using var client = app.CreateClient();

        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/v1/models/ranking/predict", ranking.Entities[0])).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/v1/models/ranking/predict", new { instances = ranking.Entities.Take(3) })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/v1/models/ranking/evaluate",
            new { instances = ranking.Entities.Take(2), labels = new { dwell = new[] { 1.0, 2 }, revenue = new[] { 1.0, 2 } } })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/v2/models/ranking/infer", new
        {
            inputs = new[] { new { name = "features", datatype = "FP32", shape = new[] { 1, 12 }, data = ranking.InputRow("features", 0) } },
            outputs = new[] { new { name = "dwell" } },
        })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.PostJsonAsync("/v1/models/shapes/heads/class/predict", new { image = shapes.Images[0] })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.PostJsonAsync("/v1/models/no-such-model/predict", new { })).StatusCode);

        var metrics = MetricsExposition.Parse(await client.GetStringAsync("/metrics"));

        // Requests by model, route, head set and status; a name the repository does not serve is never a label.
        Assert.Equal(2, metrics["mhs_requests_total{heads=\"click+dwell+revenue\",model=\"ranking\",route=\"Predict\",status=\"200\"}"]);
        Assert.Equal(1, metrics["mhs_requests_total{heads=\"dwell+revenue\",model=\"ranking\",route=\"Evaluate\",status=\"200\"}"]);
        Assert.Equal(1, metrics["mhs_requests_total{heads=\"dwell\",model=\"ranking\",route=\"V2Infer\",status=\"200\"}"]);
        Assert.Equal(1, metrics["mhs_requests_total{heads=\"class\",model=\"shapes\",route=\"PredictHead\",status=\"200\"}"]);
        Assert.Equal(1, metrics["mhs_requests_total{heads=\"\",model=\"(unknown)\",route=\"Predict\",status=\"404\"}"]);
        Assert.DoesNotContain(metrics.Keys, key => key.Contains("no-such-model", StringComparison.Ordinal));
        Assert.Equal(2, metrics["mhs_request_duration_seconds_count{model=\"ranking\",route=\"Predict\"}"]);

        // One fetch per v1 request whatever its rows and heads; none for a v2 tensor.
        Assert.Equal(3, metrics["mhs_feature_fetches_total{model=\"ranking\",source=\"store\"}"]);
        Assert.Equal(3, metrics["mhs_feature_fetch_duration_seconds_count{model=\"ranking\",source=\"store\"}"]);
        Assert.Equal(4, metrics["mhs_request_feature_fetches_count{model=\"ranking\"}"]);
        Assert.Equal(3, metrics["mhs_request_feature_fetches_sum{model=\"ranking\"}"]);
        Assert.Equal(1, metrics["mhs_request_feature_fetches_bucket{le=\"0\",model=\"ranking\"}"]);
        Assert.Equal(4, metrics["mhs_request_feature_fetches_bucket{le=\"1\",model=\"ranking\"}"]);

        // One run per request; batch rows 1, 3, 2 and 1 in whole-row buckets.
        Assert.Equal(4, metrics["mhs_session_runs_total{model=\"ranking\"}"]);
        Assert.Equal(4, metrics["mhs_inference_duration_seconds_count{model=\"ranking\"}"]);
        Assert.Equal(4, metrics["mhs_queue_duration_seconds_count{model=\"ranking\"}"]);
        Assert.Equal(7, metrics["mhs_batch_rows_sum{model=\"ranking\"}"]);
        Assert.Equal(2, metrics["mhs_batch_rows_bucket{le=\"1\",model=\"ranking\"}"]);
        Assert.Equal(3, metrics["mhs_batch_rows_bucket{le=\"2\",model=\"ranking\"}"]);
        Assert.Equal(4, metrics["mhs_batch_rows_bucket{le=\"3\",model=\"ranking\"}"]);
        Assert.Equal(0, metrics["mhs_queue_depth{model=\"ranking\"}"]);

        Assert.Equal(1, metrics["mhs_head_loss_count{head=\"dwell\",model=\"ranking\"}"]);
        Assert.Equal(1, metrics["mhs_model_loads_total{model=\"ranking\",outcome=\"loaded\"}"]);
        Assert.Equal(0, metrics["mhs_feature_store_circuit_state{store=\"sqlite\"}"]);
        Assert.True(metrics["mhs_feature_store_lookups_total{store=\"sqlite\"}"] >= 3);

        // ASP.NET Core's, the runtime's and the process's own instruments, in seconds and bytes.
        Assert.Contains(metrics.Keys, key => key.StartsWith("http_server_request_duration_seconds_count{", StringComparison.Ordinal) && key.Contains("http_route=\"/v1/models/{model}/predict\"", StringComparison.Ordinal));
        Assert.True(metrics["dotnet_gc_heap_total_allocated_bytes_total"] > 0);
        Assert.True(metrics["process_memory_usage_bytes"] > 0);
    }
}

[CollectionDefinition(nameof(ExactMetrics), DisableParallelization = true)]
public sealed class ExactMetrics;
