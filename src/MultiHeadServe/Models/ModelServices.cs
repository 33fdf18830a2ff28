namespace MultiHeadServe.Models;

public static class ModelServices
{
    /// <summary>The model repository (section "ModelRepository"), loaded before the server takes requests.</summary>
    public static IServiceCollection AddModelRepository(this IServiceCollection services)
    {
        services.AddOptions<ModelRepositoryOptions>().BindConfiguration(ModelRepositoryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ModelRegistry>();
        services.AddHostedService<ModelRepositoryLoader>();
        return services;
    }
}
