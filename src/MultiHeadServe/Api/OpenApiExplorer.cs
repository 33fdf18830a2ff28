namespace MultiHeadServe.Api;

public static class OpenApiExplorer
{
    /// <summary>The OpenAPI document (Swashbuckle) with every endpoint, schema and error status.</summary>
    public static IServiceCollection AddOpenApiExplorer(this IServiceCollection services)
    {
        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(options =>
        {
            options.SwaggerDoc("v1", new()
            {
                Title = "MultiHeadServe",
                Version = "v1",
                Description = "One request, one feature fetch, one ONNX Runtime run, every head's output.",
            });
            options.SupportNonNullableReferenceTypes();
            options.UseAllOfForInheritance();
            options.UseOneOfForPolymorphism();
            options.OperationFilter<DemoRequestExamples>();
            var documentation = Path.Combine(AppContext.BaseDirectory, "MultiHeadServe.xml");
            if (File.Exists(documentation))
            {
                options.IncludeXmlComments(documentation);
            }
        });
        return services;
    }

    /// <summary>/swagger/v1/swagger.json and the explorer UI at /swagger.</summary>
    public static WebApplication UseOpenApiExplorer(this WebApplication app)
    {
        app.UseSwagger();
        app.UseSwaggerUI(options =>
        {
            options.SwaggerEndpoint("/swagger/v1/swagger.json", "MultiHeadServe v1");
            options.DocumentTitle = "MultiHeadServe API";
            options.DisplayRequestDuration();
        });
        return app;
    }
}
