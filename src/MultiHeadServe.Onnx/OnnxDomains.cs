namespace MultiHeadServe.Onnx;

/// <summary>Operator-set domain names.</summary>
internal static class OnnxDomains
{
    /// <summary>The default ONNX operator set; models may also write it as the empty string.</summary>
    public const string Default = "ai.onnx";

    /// <summary>The form used to compare domains: the default set is always the empty string.</summary>
    public static string Normalize(string domain) => domain == Default ? string.Empty : domain;
}
