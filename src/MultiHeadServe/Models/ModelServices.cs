using Microsoft.Extensions.DependencyInjection.Extensions;

namespace MultiHeadServe.Models;

public static class ModelServices
{
    /// <summary>The model repository (section "ModelRepository"), loaded before the server takes requests and polled for changes afterwards.</summary>
    public static IServiceCollection AddModelRepository(this IServiceCollection services)
    {
        services.AddOptions<ModelRepositoryOptions>().BindConfiguration(ModelRepositoryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ProcessMemory>();
        services.AddSingleton<ModelRegistry>();
        services.AddSingleton<ModelRepository>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddKeyedSingleton<TimeProvider>(ModelRepositoryPoller.ClockKey, (provider, _) => provider.GetRequiredService<TimeProvider>());
        services.AddHostedService<ModelRepositoryLoader>();
        services.AddHostedService<ModelRepositoryPoller>();
        return services;
    }
}
