using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace MultiHeadServe.Observability;

/// <summary>
/// Serilog as the only logging provider. The sink and its format are set here, in code, so the service logs the
/// same lines whatever its working folder and whether or not an appsettings file was found; the "Serilog" section
/// of the configuration only adjusts levels. <c>Logging:Format</c> = <c>json</c> writes compact JSON lines (the
/// message rendered in <c>@m</c>); the default is text, one line per event, with the date and the trace id.
/// </summary>
public static class LoggingSetup
{
    /// <summary>The text line: date, level, message, then the trace id a client's problem+json carries.</summary>
    public const string TextTemplate =
        "[{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} {Level:u3}] {Message:lj} {{traceId={TraceId}}}{NewLine}{Exception}";

    public static WebApplicationBuilder AddServeLogging(this WebApplicationBuilder builder)
    {
        var json = string.Equals(builder.Configuration["Logging:Format"], "json", StringComparison.OrdinalIgnoreCase);
        builder.Services.AddSerilog((services, logger) =>
        {
            logger
                .MinimumLevel.Information()
                .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
                .MinimumLevel.Override("Microsoft.Hosting.Lifetime", LogEventLevel.Information)
                .MinimumLevel.Override("System.Net.Http", LogEventLevel.Warning)
                // Hosting's own per-request log scope and lines: the request log below says all of it once, so this
                // category is off, which spares every request (probes included) hosting's scope and activity; the
                // trace id comes from RequestActivityMiddleware instead.
                .MinimumLevel.Override("Microsoft.AspNetCore.Hosting.Diagnostics", HostingDiagnosticsOff)
                .ReadFrom.Configuration(builder.Configuration)
                .ReadFrom.Services(services)
                // Readiness turned off on purpose while the service drains ("Stopping: draining …" says so once): the
                // health-check service would log an error for every probe of every shutdown.
                .Filter.ByExcluding(IsDrainingReadinessCheck)
                .Enrich.FromLogContext()
                .Enrich.With<ControlCharacterEscaper>();
            if (json)
            {
                logger.WriteTo.Console(new RenderedCompactJsonFormatter());
            }
            else
            {
                logger.WriteTo.Console(outputTemplate: TextTemplate, formatProvider: System.Globalization.CultureInfo.InvariantCulture);
            }
        });
        return builder;
    }

    /// <summary>
    /// One line per request, enriched with what the request did. Health, readiness and scrape requests go to Debug;
    /// server errors to Error.
    /// </summary>
    /// <summary>Above <see cref="LogEventLevel.Fatal"/>: no event of the category is written.</summary>
    private const LogEventLevel HostingDiagnosticsOff = LogEventLevel.Fatal + 1;

    public static IApplicationBuilder UseServeRequestLogging(this IApplicationBuilder app)
    {
        return app.UseSerilogRequestLogging(options =>
        {
            options.MessageTemplate = "HTTP {RequestMethod:l} {RequestPath:l} responded {StatusCode} in {Elapsed:0.000} ms";
            options.GetLevel = (context, _, exception) =>
                exception is not null || context.Response.StatusCode >= StatusCodes.Status500InternalServerError ? LogEventLevel.Error
                : IsOperational(context.Request.Path) ? LogEventLevel.Debug
                : LogEventLevel.Information;
            options.EnrichDiagnosticContext = (diagnostics, context) =>
            {
                if (context.Features.Get<RequestTelemetry>() is { Model: not null } telemetry)
                {
                    telemetry.Enrich(diagnostics);
                }
            };
        });
    }

    private static bool IsDrainingReadinessCheck(LogEvent logEvent) =>
        logEvent.Properties.TryGetValue("HealthCheckName", out var name) && name is ScalarValue { Value: "shutdown" } &&
        logEvent.Properties.TryGetValue("SourceContext", out var source) && source is ScalarValue { Value: string context } &&
        context.StartsWith("Microsoft.Extensions.Diagnostics.HealthChecks", StringComparison.Ordinal);

    /// <summary>Requests an orchestrator or a scraper makes many times a minute.</summary>
    internal static bool IsOperational(PathString path) =>
        path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz") || path.StartsWithSegments("/metrics") ||
        Api.HealthApi.IsGrpcHealth(path);
}

/// <summary>
/// Escapes control characters in every string property (a request path with <c>%0d%0a</c>, a header), so nothing a
/// client sends can start a new line in the log or forge an entry.
/// </summary>
internal sealed class ControlCharacterEscaper : ILogEventEnricher
{
    public void Enrich(LogEvent logEvent, ILogEventPropertyFactory propertyFactory)
    {
        List<LogEventProperty>? replaced = null;
        foreach (var (name, value) in logEvent.Properties)
        {
            if (value is ScalarValue { Value: string text } && NeedsEscaping(text))
            {
                (replaced ??= []).Add(new LogEventProperty(name, new ScalarValue(Escape(text))));
            }
        }

        if (replaced is not null)
        {
            foreach (var property in replaced)
            {
                logEvent.AddOrUpdateProperty(property);
            }
        }
    }

    internal static bool NeedsEscaping(string text)
    {
        foreach (var c in text)
        {
            if (IsControl(c))
            {
                return true;
            }
        }

        return false;
    }

    internal static string Escape(string text)
    {
        var builder = new System.Text.StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            if (IsControl(c))
            {
                builder.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }

    // C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
    private static bool IsControl(char c) => c < ' ' || c is (>= '\u007f' and <= '\u009f') or '\u2028' or '\u2029';
}
