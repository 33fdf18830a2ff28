namespace MultiHeadServe.Onnx;

/// <summary>An operator set a model imports: nodes of that domain bind to operators as of this version.</summary>
/// <param name="Domain">The domain; empty for the default ONNX operator set.</param>
/// <param name="Version">The operator set version.</param>
public sealed record OpsetImport(string Domain, long Version)
{
    /// <summary>The domain as people write it: <c>ai.onnx</c> for the default set.</summary>
    public string DisplayDomain => Domain.Length == 0 ? OnnxDomains.Default : Domain;
}
