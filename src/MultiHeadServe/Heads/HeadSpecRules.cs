using System.Globalization;
using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>
/// Checks a head's kind and activation, shared by decoders and loss evaluation so both accept exactly the
/// same manifests.
/// </summary>
internal static class HeadSpecRules
{
    /// <summary>The activations that make sense for each kind.</summary>
    public static string[] ActivationsFor(string kind) => kind switch
    {
        HeadKinds.Classification => [Activations.Softmax, Activations.None, Activations.Sigmoid],
        HeadKinds.Multilabel or HeadKinds.Binary => [Activations.Sigmoid, Activations.None],
        _ => [Activations.None],
    };

    public static void Check(HeadSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (string.IsNullOrWhiteSpace(spec.Name))
        {
            throw new HeadSpecException("", "name", "a head needs a name");
        }

        if (string.IsNullOrWhiteSpace(spec.Output))
        {
            throw new HeadSpecException(spec.Name, "output", "a head needs the name of the ONNX output it reads");
        }

        if (!HeadKinds.All.Contains(spec.Kind, StringComparer.Ordinal))
        {
            throw new HeadSpecException(spec.Name, "kind", $"unknown kind '{spec.Kind}'; expected one of {string.Join(", ", HeadKinds.All)}");
        }

        if (!Activations.All.Contains(spec.Activation, StringComparer.Ordinal))
        {
            throw new HeadSpecException(
                spec.Name, "activation", $"unknown activation '{spec.Activation}'; expected one of {string.Join(", ", Activations.All)}");
        }

        var allowed = ActivationsFor(spec.Kind);
        if (!allowed.Contains(spec.Activation, StringComparer.Ordinal))
        {
            throw new HeadSpecException(
                spec.Name, "activation", $"activation '{spec.Activation}' does not apply to a {spec.Kind} head; use {string.Join(" or ", allowed)}");
        }
    }

    /// <summary>
    /// The decimal value a manifest author wrote for a float field: 0.1f becomes 0.1, not 0.100000001...,
    /// so a regression head's scale and offset mean what the manifest says.
    /// </summary>
    public static double ManifestDouble(float value) =>
        double.Parse(value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}
