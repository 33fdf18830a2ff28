using System.ComponentModel.DataAnnotations;

namespace MultiHeadServe;

/// <summary>Limits of the public API. Section "Serve".</summary>
public sealed class ServeOptions
{
    public const string Section = "Serve";

    /// <summary>Largest request body accepted; larger bodies get 413.</summary>
    [Range(1024, 1L << 30)]
    public long MaxRequestBytes { get; set; } = 16L << 20;

    /// <summary>Most rows one request may carry in <c>instances</c>.</summary>
    [Range(1, 100_000)]
    public int MaxInstances { get; set; } = 256;

    /// <summary>Largest width or height of an uploaded image, checked before its pixels are allocated.</summary>
    [Range(1, 65_535)]
    public int MaxImageSide { get; set; } = 4096;

    /// <summary>
    /// The pixels all images of one request may decode to together (64 Mi: four images at the largest side), checked
    /// from each image's header before it is decoded: bounds the CPU one request can cost.
    /// </summary>
    [Range(1, int.MaxValue)]
    public int MaxPixelsPerRequest { get; set; } = 64 * 1024 * 1024;

    /// <summary>
    /// The memory the feature tensors of all requests in flight may hold together (see <see cref="Features.TensorBudget"/>):
    /// a request past what is left gets 429 with Retry-After, one larger than all of it 413. 512 MiB: about 870 rows of a
    /// 224x224 image model at once, 2.7 million of a 12-feature one.
    /// </summary>
    [Range(1L << 20, 1L << 40)]
    public long MaxTensorBytesInFlight { get; set; } = 512L << 20;

    /// <summary>
    /// The memory the bodies of all requests in flight may hold together, with what parsing them costs (see
    /// <see cref="Features.BodyBudget"/>): a body past what is left gets 429 with Retry-After. 768 MiB: three JSON bodies
    /// of the largest size (Serve:MaxRequestBytes) at once, or 48 raw bodies of it; bodies up to 64 KiB are not counted.
    /// </summary>
    [Range(1L << 20, 1L << 40)]
    public long MaxBodyBytesInFlight { get; set; } = 768L << 20;

    /// <summary>
    /// On SIGTERM, how long the service keeps serving with readiness 503 and <c>Connection: close</c> before it stops
    /// (see <see cref="Api.ShutdownDrain"/>). Keep it below the orchestrator's grace period less the preStop delay.
    /// </summary>
    [Range(0, 300)]
    public int ShutdownDrainSeconds { get; set; } = 5;

    /// <summary>
    /// A plain-text HTTP/2 port for gRPC clients of the Open Inference Protocol (Triton's convention is 8001); unset,
    /// gRPC is served only where an endpoint speaks HTTP/2 (TLS, or <c>Kestrel:Endpoints</c>). See <see cref="Api.Grpc.GrpcHosting"/>.
    /// </summary>
    [Range(1, 65_535)]
    public int? GrpcPort { get; set; }
}
