using Microsoft.Extensions.FileProviders;

namespace MultiHeadServe.Api;

/// <summary>
/// The playground at <c>/</c>: static files (wwwroot, copied beside the build output) over the service's own API, with
/// no CDN and no network access. It is served before the API-key check, as the explorer is: the page holds no data and
/// sends the key the person types with each call.
/// </summary>
public static class Playground
{
    public static WebApplication UsePlayground(this WebApplication app)
    {
        // The build output's copy first: the service may run from another folder than its project (a container, a test).
        var root = new[] { Path.Combine(AppContext.BaseDirectory, "wwwroot"), app.Environment.WebRootPath }
            .FirstOrDefault(path => !string.IsNullOrEmpty(path) && File.Exists(Path.Combine(path, "index.html")));
        if (root is null)
        {
            return app;
        }

        var files = new PhysicalFileProvider(root);
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
        return app;
    }
}
