using MultiHeadServe;
using MultiHeadServe.Api;
using MultiHeadServe.Features;
using MultiHeadServe.Inference;
using MultiHeadServe.Models;
using MultiHeadServe.Observability;

var builder = WebApplication.CreateBuilder(args);

builder.AddServeLogging();
builder.Services.AddOptions<ServeOptions>().BindConfiguration(ServeOptions.Section).ValidateDataAnnotations().ValidateOnStart();
builder.Services.AddModelRepository();
builder.Services.AddFeatureSources();
builder.Services.AddSingleton<InferenceService>();
builder.Services.AddServeMetrics();
// Responses leave out what does not apply (a single row has no "predictions", a box without an image no "pixels").
builder.Services.ConfigureHttpJsonOptions(json => json.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull);
builder.Services.AddProblemDetails();
builder.Services.AddExceptionHandler<ServeExceptionHandler>();
builder.Services.AddOpenApiExplorer();
// Bodies are read by the feature-fetch middleware, which enforces Serve:MaxRequestBytes with a 413 problem.
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = null);

var app = builder.Build();

app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseMiddleware<RequestCompletionLogging>();
app.UseOpenApiExplorer();
app.UseRouting();
app.UseMiddleware<FeatureFetchMiddleware>();

app.MapHealthApi();
app.MapMetricsApi();
app.MapModelsApi();
app.MapPredictApi();
app.MapEvaluateApi();
app.MapOpenInferenceApi();

app.Run();

/// <summary>The entry point; public so integration tests can host the app.</summary>
public partial class Program;
