using Serilog;

namespace MultiHeadServe.Observability;

public static class LoggingSetup
{
    /// <summary>
    /// Serilog as the only logging provider, configured from the "Serilog" section (levels, console sink;
    /// set the console sink's formatter to Serilog.Formatting.Json.JsonFormatter for JSON lines).
    /// </summary>
    public static WebApplicationBuilder AddServeLogging(this WebApplicationBuilder builder)
    {
        var logger = new LoggerConfiguration()
            .ReadFrom.Configuration(builder.Configuration)
            .Enrich.FromLogContext()
            .CreateLogger();
        builder.Logging.ClearProviders();
        builder.Logging.AddSerilog(logger, dispose: true);
        return builder;
    }
}
