using System.Buffers;

namespace MultiHeadServe.Benchmarks.Hosting;

/// <summary>
/// The `floor` sub-command: the cheapest ASP.NET Core server that does what every predict call must do over
/// HTTP — accept a JSON POST, read the whole body and answer. Whatever the service does on top costs more than this.
/// </summary>
internal static class HttpFloor
{
    public const string Command = "floor";

    public const string Route = "/floor";

    private static readonly byte[] Answer = "{}"u8.ToArray();

    public static async Task<int> RunAsync(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        // No per-request log lines, like the service at its Warning level during the run.
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = null);

        var app = builder.Build();
        app.MapGet("/readyz", () => TypedResults.Ok());
        app.MapPost(Route, DiscardBodyAsync);
        // The same answer to a GET: what /healthz costs on a bare WebApplication.
        app.MapGet(Route, (HttpContext context) => context.Response.Body.WriteAsync(Answer, context.RequestAborted).AsTask());
        await app.RunAsync();
        return 0;
    }

    private static async Task DiscardBodyAsync(HttpContext context)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (await context.Request.Body.ReadAsync(buffer, context.RequestAborted) > 0)
            {
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        context.Response.ContentType = "application/json";
        context.Response.ContentLength = Answer.Length;
        await context.Response.Body.WriteAsync(Answer, context.RequestAborted);
    }
}
