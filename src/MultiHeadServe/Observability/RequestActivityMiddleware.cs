using System.Diagnostics;

namespace MultiHeadServe.Observability;

/// <summary>
/// Gives every request that reaches the pipeline a W3C trace id (the caller's, from <c>traceparent</c>, or a new
/// one): the id its log line and any problem it gets carry. Hosting would start such an activity for every request,
/// liveness probes and scrapes included, because its log category was enabled; with that category off, this
/// middleware, placed after the short-circuited operational endpoints, starts one only for the API's requests. When
/// something else already started one (a tracing SDK listening to hosting), that one is used.
/// </summary>
public sealed class RequestActivityMiddleware(RequestDelegate next)
{
    internal const string ActivityName = "MultiHeadServe.Request";

    public async Task InvokeAsync(HttpContext context)
    {
        if (Activity.Current is not null)
        {
            await next(context);
            return;
        }

        using var activity = new Activity(ActivityName);
        activity.SetIdFormat(ActivityIdFormat.W3C);
        DistributedContextPropagator.Current.ExtractTraceIdAndState(
            context.Request.Headers,
            static (object? carrier, string name, out string? value, out IEnumerable<string>? values) =>
            {
                values = null;
                value = ((IHeaderDictionary)carrier!)[name];
            },
            out var parent,
            out var state);
        if (!string.IsNullOrEmpty(parent))
        {
            activity.SetParentId(parent);
            activity.TraceStateString = state;
        }

        activity.Start();
        await next(context);
    }
}
