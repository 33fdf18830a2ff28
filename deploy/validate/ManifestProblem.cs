namespace MultiHeadServe.ManifestValidation;

/// <summary>One way a manifest differs from the schema of its kind.</summary>
/// <param name="Source">The file (or "(stdin)") the manifest came from.</param>
/// <param name="Kind">The manifest's kind, "?" when it has none.</param>
/// <param name="Name">Its metadata.name, "?" when it has none.</param>
/// <param name="Path">The field, as in kubectl's messages (spec.template.spec.containers[0].image); empty for the whole manifest.</param>
/// <param name="Message">What is wrong with it.</param>
/// <param name="Line">The line of the field in the YAML, 0 when unknown (rendered manifests have no lines of their own).</param>
public sealed record ManifestProblem(string Source, string Kind, string Name, string Path, string Message, long Line = 0)
{
    public override string ToString() =>
        $"{Source}{(Line > 0 ? $":{Line}" : "")}: {Kind}/{Name}: {(Path.Length > 0 ? Path + ": " : "")}{Message}";
}
