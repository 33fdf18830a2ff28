using MultiHeadServe;
using MultiHeadServe.Api;
using MultiHeadServe.Api.Grpc;
using MultiHeadServe.Features;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;
using MultiHeadServe.Security;

// Settings and content are found next to the application when it is started from another folder (a container's
// working directory, the repository root), so the same appsettings.json applies wherever it runs from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    ContentRootPath = File.Exists(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json")) ? null : AppContext.BaseDirectory,
});

builder.AddServeLogging();
builder.Services.AddOptions<ServeOptions>().BindConfiguration(ServeOptions.Section).ValidateDataAnnotations().ValidateOnStart();
builder.Services.AddModelRepository();
builder.Services.AddFeatureSources();
builder.Services.AddSingleton<InferenceService>();
builder.Services.AddServeMetrics(builder.Configuration);
builder.Services.AddServeHealthChecks();
builder.Services.AddSingleton<ShutdownDrain>();
builder.Services.AddHostedService(services => services.GetRequiredService<ShutdownDrain>());
// Room for the drain and for the requests in flight after it; under Kubernetes' terminationGracePeriodSeconds.
builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(30));
builder.Services.AddOptions<ApiKeyOptions>().BindConfiguration(ApiKeyOptions.Section);
builder.Services.AddSingleton<ApiKeys>();
// Responses leave out what does not apply (a single row has no "predictions", a box without an image no "pixels").
builder.Services.ConfigureHttpJsonOptions(json => json.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull);
// Every problem's traceId is the W3C trace id that the request's log line carries, so one finds the other.
// On /v2 every problem also carries the protocol's "error", so Triton and KServe clients read it whatever produced it.
builder.Services.AddProblemDetails(problems => problems.CustomizeProblemDetails = context =>
{
    context.ProblemDetails.Extensions["traceId"] = System.Diagnostics.Activity.Current?.TraceId.ToHexString() ?? context.HttpContext.TraceIdentifier;
    if (context.HttpContext.Request.Path.StartsWithSegments("/v2") && !context.ProblemDetails.Extensions.ContainsKey("error"))
    {
        context.ProblemDetails.Extensions["error"] = context.ProblemDetails.Detail ?? context.ProblemDetails.Title;
    }
});
builder.Services.AddApiProblemDetailsWriter();
builder.Services.AddExceptionHandler<ServeExceptionHandler>();
builder.Services.AddOpenApiExplorer(builder.Configuration);
// The Open Inference Protocol over gRPC, with reflection; Serve:GrpcPort opens a plain-text HTTP/2 port for it.
builder.AddOpenInferenceGrpc();
// Bodies are read by the feature-fetch middleware, which enforces Serve:MaxRequestBytes with a 413 problem (counted
// after decompression: a gzip, deflate or Brotli body, as Triton's clients send with request compression on).
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = null);
builder.Services.AddRequestDecompression();

var app = builder.Build();

// Routing first: the operational endpoints (liveness, readiness, metrics) are short-circuited and answer right there,
// without the logging, problem, explorer and model middleware below (unless API keys protect them: see MapHealthApi).
app.UseRouting();
app.UseMiddleware<RequestActivityMiddleware>();
app.UseMiddleware<ShutdownDrainMiddleware>();
app.UseServeRequestLogging();
app.UseExceptionHandler();
app.UsePlayground();
app.UseMiddleware<ApiKeyMiddleware>();
app.UseUnknownGrpcServices();
app.UseStatusCodePages();
app.UseOpenApiExplorer();
app.UseMiddleware<RequestTelemetryMiddleware>();
app.UseMiddleware<MultiHeadServe.Api.Grpc.GrpcMessageBudgetMiddleware>();
app.UseRequestDecompression();
app.UseMiddleware<FeatureFetchMiddleware>();

app.MapHealthApi();
app.MapMetricsApi();
app.MapModelsApi();
app.MapPredictApi();
app.MapEvaluateApi();
app.MapOpenInferenceApi();
app.MapOpenInferenceGrpc();
app.MapVersionedApi();
app.MapModelRepositoryApi();

app.Run();

/// <summary>The entry point; public so integration tests can host the app.</summary>
public partial class Program;
