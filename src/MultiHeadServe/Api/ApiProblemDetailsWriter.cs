namespace MultiHeadServe.Api;

/// <summary>
/// Writes problems on the API routes (<c>/v1</c>, <c>/v2</c>) as JSON whatever the request's <c>Accept</c> header says.
/// The framework's writer offers JSON only to clients that accept it; for any other the result fell back to a bare JSON
/// body without the service's <c>traceId</c> and, on /v2, without the protocol's <c>error</c> (a client sending
/// <c>Accept: text/html</c> got <c>{"title":…}</c> only), and a route the API does not have answered text/plain. Those
/// routes have no other representation, so every client gets the same problem. Wraps the framework's writer: its
/// defaults and Program's customization apply as before.
/// </summary>
internal sealed class ApiProblemDetailsWriter(IProblemDetailsWriter framework) : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => IsApi(context.HttpContext.Request.Path) || framework.CanWrite(context);

    public ValueTask WriteAsync(ProblemDetailsContext context) => framework.WriteAsync(context);

    private static bool IsApi(PathString path) => path.StartsWithSegments("/v1") || path.StartsWithSegments("/v2");
}

internal static class ApiProblemDetailsServices
{
    /// <summary>Call after <c>AddProblemDetails</c>: puts <see cref="ApiProblemDetailsWriter"/> around the writer it registered.</summary>
    public static IServiceCollection AddApiProblemDetailsWriter(this IServiceCollection services)
    {
        var framework = services.Last(d => d.ServiceType == typeof(IProblemDetailsWriter));
        var type = framework.ImplementationType ?? throw new InvalidOperationException("AddProblemDetails registered its writer in a way this service does not know.");
        services.Remove(framework);
        services.AddSingleton<IProblemDetailsWriter>(provider => new ApiProblemDetailsWriter((IProblemDetailsWriter)ActivatorUtilities.CreateInstance(provider, type)));
        return services;
    }
}
