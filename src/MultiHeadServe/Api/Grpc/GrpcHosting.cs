using System.Globalization;
using System.Net;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace MultiHeadServe.Api.Grpc;

/// <summary>
/// Registers the Open Inference Protocol's gRPC service and server reflection, and the plain-text HTTP/2 port gRPC
/// clients connect to.
/// <para>
/// Why a port of its own: without TLS there is no ALPN, and Kestrel cannot tell an HTTP/1.1 request from an HTTP/2
/// connection preface on one endpoint, so an <c>Http1AndHttp2</c> endpoint serves only HTTP/1.1 in plain text. gRPC
/// clients in plain text (<c>grpcurl -plaintext</c>, Triton's and KServe's clients with insecure channels) speak HTTP/2
/// with prior knowledge; they get <c>Serve:GrpcPort</c>, an HTTP/2-only endpoint (Triton's default is 8001). The REST
/// endpoints stay where <c>urls</c> / <c>ASPNETCORE_HTTP_PORTS</c> put them. Behind TLS, or with endpoints configured
/// under <c>Kestrel:Endpoints</c>, the gRPC service answers on any endpoint that speaks HTTP/2.
/// </para>
/// </summary>
internal static class GrpcHosting
{
    /// <summary>Paths of the reflection service: open like the OpenAPI document, it describes the API and holds no data.</summary>
    public static bool IsReflection(PathString path) =>
        path.StartsWithSegments("/grpc.reflection.v1alpha.ServerReflection") || path.StartsWithSegments("/grpc.reflection.v1.ServerReflection");

    /// <summary>A gRPC call (its content type is application/grpc or a +proto/+json variant).</summary>
    public static bool IsGrpc(HttpRequest request) =>
        request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    public static WebApplicationBuilder AddOpenInferenceGrpc(this WebApplicationBuilder builder)
    {
        builder.Services.AddGrpc();
        // A message is held to the same limit as a REST body (gRPC answers RESOURCE_EXHAUSTED past it).
        builder.Services.AddOptions<GrpcServiceOptions>().Configure<IOptions<ServeOptions>>((grpc, serve) =>
        {
            grpc.MaxReceiveMessageSize = (int)Math.Min(serve.Value.MaxRequestBytes, int.MaxValue);
            // gRPC's own answer to an unknown service is a route, {service}/{method}, for POST: it matched every path
            // of two segments, so PATCH /v1/models found it instead of the list's GET and answered 404, not 405.
            // UseUnknownGrpcServices answers those calls instead, after routing has found nothing.
            grpc.IgnoreUnknownServices = true;
        });
        builder.Services.AddGrpcReflection();
        if (builder.Configuration.GetValue<int?>($"{ServeOptions.Section}:{nameof(ServeOptions.GrpcPort)}") is int port)
        {
            builder.WebHost.ConfigureKestrel((context, kestrel) => Listen(kestrel, context.Configuration, port));
        }

        return builder;
    }

    /// <summary>
    /// A gRPC call that no route took (a service this server does not have: a client meant for another server) answers
    /// UNIMPLEMENTED the way gRPC does, as a response of headers only, naming the service; any other request goes on.
    /// </summary>
    public static IApplicationBuilder UseUnknownGrpcServices(this IApplicationBuilder app) =>
        app.Use((context, next) =>
        {
            if (context.GetEndpoint() is not null || !IsGrpc(context.Request))
            {
                return next(context);
            }

            var service = context.Request.Path.Value is { } path && path.LastIndexOf('/') is > 0 and var slash ? path[1..slash] : context.Request.Path.Value;
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = ((int)global::Grpc.Core.StatusCode.Unimplemented).ToString(CultureInfo.InvariantCulture);
            // The protocol percent-encodes the message.
            context.Response.Headers["grpc-message"] = Uri.EscapeDataString(
                $"Unknown service '{service}'; this server has {GRPCInferenceService.Descriptor.FullName} (server reflection lists every service).");
            return Task.CompletedTask;
        });

    public static IEndpointRouteBuilder MapOpenInferenceGrpc(this IEndpointRouteBuilder routes)
    {
        routes.MapGrpcService<GrpcInferenceService>();
        routes.MapGrpcReflectionService();
        return routes;
    }

    /// <summary>
    /// The gRPC port, HTTP/2 only. Endpoints set in code replace the <c>urls</c> setting, so those are bound here too
    /// (unless <c>Kestrel:Endpoints</c> configures the endpoints, which then add to these). Kestrel still logs that it
    /// overrides the urls: it does, with the same addresses.
    /// </summary>
    private static void Listen(KestrelServerOptions kestrel, IConfiguration configuration, int grpcPort)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(grpcPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(grpcPort, 65535);
        // Image tensors are large messages sent by many calls at once on one connection: HTTP/2's default flow-control
        // windows (1 MiB per connection, 768 KiB per stream) would hold a client back to about one 600 KB tensor in
        // flight. Windows the size of several requests let the calls of one connection arrive side by side.
        kestrel.Limits.Http2.InitialConnectionWindowSize = 32 * 1024 * 1024;
        kestrel.Limits.Http2.InitialStreamWindowSize = 4 * 1024 * 1024;
        var ownEndpoints = !configuration.GetSection("Kestrel:Endpoints").Exists();
        var addresses = ownEndpoints ? HttpUrls(configuration).Select(BindingAddress.Parse).ToList() : [];
        // gRPC listens where HTTP does: on loopback only when every HTTP address is loopback, else on every interface.
        if (addresses.Count > 0 && addresses.All(IsLoopback))
        {
            kestrel.ListenLocalhost(grpcPort, listen => listen.Protocols = HttpProtocols.Http2);
        }
        else
        {
            kestrel.ListenAnyIP(grpcPort, listen => listen.Protocols = HttpProtocols.Http2);
        }

        foreach (var address in addresses)
        {
            var url = address.ToString();
            if (!string.Equals(address.Scheme, "http", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException(
                    $"Serve:GrpcPort: '{url}' is not plain http; configure TLS endpoints under Kestrel:Endpoints instead of urls.");
            }

            if (address.Host is "*" or "+" or "" or "0.0.0.0" or "[::]")
            {
                kestrel.ListenAnyIP(address.Port);
            }
            else if (string.Equals(address.Host, "localhost", StringComparison.OrdinalIgnoreCase))
            {
                kestrel.ListenLocalhost(address.Port);
            }
            else if (IPAddress.TryParse(address.Host.Trim('[', ']'), out var ip))
            {
                kestrel.Listen(ip, address.Port);
            }
            else
            {
                // Kestrel binds a host name it cannot resolve to every interface, as it does for urls.
                kestrel.ListenAnyIP(address.Port);
            }
        }
    }

    private static bool IsLoopback(BindingAddress address) =>
        string.Equals(address.Host, "localhost", StringComparison.OrdinalIgnoreCase) ||
        (IPAddress.TryParse(address.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>The HTTP addresses the host would bind: <c>urls</c>, else <c>http_ports</c>, else Kestrel's default.</summary>
    private static IEnumerable<string> HttpUrls(IConfiguration configuration)
    {
        var separators = new[] { ';', ',' };
        if (configuration["urls"] is { Length: > 0 } urls)
        {
            return urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }

        if (configuration["http_ports"] is { Length: > 0 } ports)
        {
            return ports.Split(separators, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => $"http://*:{p}");
        }

        return ["http://localhost:5000"];
    }
}
