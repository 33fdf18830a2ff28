using Microsoft.Extensions.Options;

namespace MultiHeadServe.Api;

/// <summary>
/// A graceful stop without dropped requests. On SIGTERM, before the server stops, the service drains for
/// <see cref="ServeOptions.ShutdownDrainSeconds"/>: readiness answers 503 (so load balancers take the pod out),
/// every request is still served, and each response carries <c>Connection: close</c>, so a client's keep-alive
/// connection ends with an answer instead of being cut while the client sends its next request. Then the server
/// stops accepting and finishes the requests it has (within the host's shutdown timeout).
/// </summary>
public sealed class ShutdownDrain(IOptions<ServeOptions> options, TimeProvider time, ILogger<ShutdownDrain> logger) : IHostedLifecycleService
{
    private volatile bool _draining;

    /// <summary>Set once the stop has begun.</summary>
    public bool Draining => _draining;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        var drain = TimeSpan.FromSeconds(options.Value.ShutdownDrainSeconds);
        if (drain > TimeSpan.Zero)
        {
            logger.LogInformation("Stopping: draining for {Seconds} s (readiness 503, connections closed after their answer)", drain.TotalSeconds);
            try
            {
                await Task.Delay(drain, time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // The host's own shutdown timeout ran out first: stop now.
            }
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>While draining, every response asks the client to close its connection.</summary>
public sealed class ShutdownDrainMiddleware(RequestDelegate next, ShutdownDrain drain)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (drain.Draining)
        {
            context.Response.Headers.Connection = "close";
        }

        return next(context);
    }
}
