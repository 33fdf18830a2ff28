namespace MultiHeadServe.Security;

/// <summary>
/// Optional API keys. Section "Security". With no key configured every endpoint is open (the default, for a service
/// behind its own gateway); with one or more, every endpoint but the health and metrics ones asks for a key, sent as
/// <c>Authorization: Bearer &lt;key&gt;</c> or <c>X-Api-Key: &lt;key&gt;</c>.
/// </summary>
public sealed class ApiKeyOptions
{
    public const string Section = "Security";

    /// <summary>Accepted keys (Security__ApiKeys__0, __1, …: several, so keys can be rotated without downtime).</summary>
    public IList<string> ApiKeys { get; } = [];

    /// <summary>A file of keys, one per line (a mounted Kubernetes secret); blank lines and lines starting with # are skipped.</summary>
    public string? ApiKeyFile { get; set; }

    /// <summary>Also ask for a key on /healthz, /readyz and /metrics (off: orchestrators and scrapers probe them without one).</summary>
    public bool ProtectOperationalEndpoints { get; set; }
}
