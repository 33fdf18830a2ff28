using Microsoft.AspNetCore.ResponseCompression;
using Microsoft.OpenApi;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;
using MultiHeadServe.Security;

namespace MultiHeadServe.Api;

public static class OpenApiExplorer
{
    private const string ApiKeyScheme = "ApiKey";

    /// <summary>The OpenAPI document (Swashbuckle) with every endpoint, schema and error status.</summary>
    public static IServiceCollection AddOpenApiExplorer(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new ApiKeyOptions();
        configuration.GetSection(ApiKeyOptions.Section).Bind(options);
        var keysConfigured = options.ApiKeys.Any(k => !string.IsNullOrWhiteSpace(k)) || !string.IsNullOrEmpty(options.ApiKeyFile);
        services.AddEndpointsApiExplorer();
        services.AddSingleton<OpenApiDocumentCache>();
        // The document carries real example bodies (an image model's picture and tensor are hundreds of kilobytes):
        // compressed, it is a fraction of the bytes. Only the explorer's branch compresses; the API answers as it is.
        services.AddResponseCompression(compression =>
        {
            compression.EnableForHttps = true;
            compression.Providers.Add<BrotliCompressionProvider>();
            compression.Providers.Add<GzipCompressionProvider>();
        });
        services.AddSwaggerGen(swagger =>
        {
            if (keysConfigured)
            {
                // The explorer's Authorize button then sends the key as a bearer token on every call.
                swagger.AddSecurityDefinition(ApiKeyScheme, new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "An API key from Security:ApiKeys (or Security:ApiKeyFile), as 'Authorization: Bearer <key>' (or 'X-Api-Key: <key>').",
                });
                swagger.AddSecurityRequirement(document => new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyScheme, document)] = [] });
            }

            swagger.SwaggerDoc("v1", new()
            {
                Title = "MultiHeadServe",
                Version = "v1",
                Description = "One request, one feature fetch, one ONNX Runtime run, every head's output.",
            });
            swagger.SupportNonNullableReferenceTypes();
            swagger.UseAllOfForInheritance();
            swagger.UseOneOfForPolymorphism();
            swagger.OperationFilter<DemoRequestExamples>();
            swagger.DocumentFilter<OpenApiContract>(keysConfigured, options.ProtectOperationalEndpoints);
            swagger.DocumentAsyncFilter<DemoResponseExamples>();
            // Runs after the examples are recorded (Swashbuckle applies the asynchronous filters first).
            swagger.DocumentFilter<SharedExamples>();
            // Output tensors are written as plain arrays of numbers.
            swagger.MapType<ReadOnlyMemory<float>>(() => new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.Number, Format = "float" } });
            // The manifest's enums are written by their manifest names, as the strings they were.
            swagger.MapType<HeadKind>(() => new OpenApiSchema { Type = JsonSchemaType.String });
            swagger.MapType<Activation>(() => new OpenApiSchema { Type = JsonSchemaType.String });
            swagger.MapType<BoxFormat>(() => new OpenApiSchema { Type = JsonSchemaType.String });
            swagger.MapType<FeatureSource>(() => new OpenApiSchema { Type = JsonSchemaType.String });
            var documentation = Path.Combine(AppContext.BaseDirectory, "MultiHeadServe.xml");
            if (File.Exists(documentation))
            {
                swagger.IncludeXmlComments(documentation);
            }
        });
        return services;
    }

    /// <summary>/swagger/v1/swagger.json and the explorer UI at /swagger.</summary>
    public static WebApplication UseOpenApiExplorer(this WebApplication app)
    {
        // Only requests under /swagger enter the explorer's middleware: the rest of the API does not pay for its
        // path checks and the per-request resolution of the document provider.
        app.UseWhen(context => context.Request.Path.StartsWithSegments("/swagger"), explorer =>
        {
            explorer.UseResponseCompression();
            // Built once per served-model set and server, not per request.
            var cache = explorer.ApplicationServices.GetRequiredService<OpenApiDocumentCache>();
            explorer.Use(next => context => cache.InvokeAsync(context, next));
            // The document names the server it was fetched from, so generated clients and the explorer call the same place.
            explorer.UseSwagger(options =>
            {
                options.PreSerializeFilters.Add((document, request) =>
                    document.Servers = [new OpenApiServer { Url = $"{request.Scheme}://{request.Host}{request.PathBase}" }]);
                options.CustomDocumentSerializer = new CompactOpenApiJson();
            });
            explorer.UseSwaggerUI(options =>
            {
                options.SwaggerEndpoint("/swagger/v1/swagger.json", "MultiHeadServe v1");
                options.DocumentTitle = "MultiHeadServe API";
                options.DisplayRequestDuration();
            });
        });
        return app;
    }
}
