using Microsoft.AspNetCore.Diagnostics;
using MultiHeadServe.Heads;

namespace MultiHeadServe.Api;

/// <summary>
/// The last line: anything the endpoints did not turn into a problem becomes one here, without a stack
/// trace. A model that emits NaN/Infinity is named as such; a client that went away gets nothing written.
/// </summary>
public sealed class ServeExceptionHandler(IProblemDetailsService problems, ILogger<ServeExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is OperationCanceledException && httpContext.RequestAborted.IsCancellationRequested)
        {
            // 499 in nginx's vocabulary: the client closed the request; there is no one to answer.
            httpContext.Response.StatusCode = 499;
            return true;
        }

        if (exception is BadHttpRequestException bad)
        {
            // Framing the server refused or a body too slow, met outside the body reader: the client's, with its status.
            httpContext.Response.StatusCode = bad.StatusCode;
            return await problems.TryWriteAsync(new ProblemDetailsContext
            {
                HttpContext = httpContext,
                Exception = exception,
                ProblemDetails = { Status = bad.StatusCode, Title = "Invalid request", Detail = bad.Message },
            });
        }

        var (status, title, detail) = exception switch
        {
            HeadOutputException output => (StatusCodes.Status500InternalServerError, "Model output invalid", output.Message),
            _ => (StatusCodes.Status500InternalServerError, "Internal error", "The server failed to handle the request; it is logged with the trace id."),
        };
        logger.LogError(exception, "Request {Method} {Path} failed", httpContext.Request.Method, httpContext.Request.Path.Value);
        httpContext.Response.StatusCode = status;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        });
    }
}
