using System.Text.RegularExpressions;
using MultiHeadServe.Heads;
using MultiHeadServe.Heads.Losses;
using MultiHeadServe.Inference.Engine;
using MultiHeadServe.Onnx;

namespace MultiHeadServe.Models;

/// <summary>
/// Checks a manifest against itself and against the session's real metadata, so a model that would fail
/// on its first request fails at start-up instead, naming the file, the field and the reason. Kinds, activations,
/// box formats and feature sources outside their enums are refused earlier, by <see cref="ManifestEnumConverter{TEnum}"/>
/// as the manifest is read; what each head kind reads is checked by <see cref="HeadSpecRules"/>.
/// </summary>
public static partial class ManifestValidator
{
    private static readonly HashSet<string> Combinations = ["sum", "weighted", "uncertainty"];

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,63}$")]
    public static partial Regex ModelName();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex Identifier();

    public static void Validate(ModelManifest manifest, ModelSession session, string file)
    {
        void Fail(string field, string reason) => throw new ManifestException(file, field, reason);

        if (!ModelName().IsMatch(manifest.Name))
        {
            Fail("name", $"'{manifest.Name}' must match {ModelName()}.");
        }

        ValidateInputs(manifest, session, Fail);
        ValidateFeatures(manifest, session, Fail);
        ValidateHeads(manifest, session, Fail);
        ValidateBatching(manifest, session, Fail);
        ValidateLoss(manifest, Fail);
    }

    private static void ValidateInputs(ModelManifest manifest, ModelSession session, Action<string, string> fail)
    {
        foreach (var actual in session.Inputs)
        {
            var index = manifest.Inputs.ToList().FindIndex(i => i.Name == actual.Name);
            if (index < 0)
            {
                fail("inputs", $"the model has an input '{actual.Name}' that the manifest does not declare.");
            }
        }

        for (var i = 0; i < manifest.Inputs.Count; i++)
        {
            var declared = manifest.Inputs[i];
            var actual = session.Inputs.FirstOrDefault(x => x.Name == declared.Name);
            if (actual is null)
            {
                fail($"inputs[{i}].name", $"'{declared.Name}' is not an input of the model (inputs: {string.Join(", ", session.Inputs.Select(x => x.Name))}).");
                return;
            }

            var actualType = actual.ElementType.ToName();
            if (!string.Equals(declared.DataType, actualType, StringComparison.Ordinal))
            {
                fail($"inputs[{i}].dataType", $"'{declared.DataType}' but the model's input '{actual.Name}' is {actualType}.");
            }

            if (declared.Shape.Count != actual.Shape.Count ||
                declared.Shape.Zip(actual.Shape).Any(p => p.First >= 0 && p.Second >= 0 && p.First != p.Second))
            {
                fail($"inputs[{i}].shape", $"[{string.Join(", ", declared.Shape)}] but the model's input '{actual.Name}' is [{string.Join(", ", actual.Shape)}].");
            }
        }
    }

    private static void ValidateFeatures(ModelManifest manifest, ModelSession session, Action<string, string> fail)
    {
        var features = manifest.Features;
        var input = session.Inputs.FirstOrDefault(i => i.Name == features.Input);
        if (input is null)
        {
            fail("features.input", $"'{features.Input}' is not an input of the model.");
            return;
        }

        if (session.Inputs.Count != 1)
        {
            fail("inputs", "the service feeds one feature tensor per model; this model has several inputs.");
        }

        if (input.ElementType != TensorElementType.Float32)
        {
            fail("features.input", $"'{input.Name}' is {input.ElementType.ToName()}; feature tensors are float32.");
        }

        if (input.Shape.Skip(1).Any(d => d < 0))
        {
            fail("features.input", $"only the batch dimension of '{input.Name}' may be dynamic; its shape is [{string.Join(", ", input.Shape)}].");
        }

        if (features.Source == FeatureSource.Image)
        {
            ValidateImage(features.Image, input, fail);
            return;
        }

        var columns = features.Columns ?? [];
        if (columns.Count == 0)
        {
            fail("features.columns", "a tabular model must list its columns in tensor order.");
        }

        if (input.Shape.Count != 2 || input.Shape[1] != columns.Count)
        {
            fail("features.columns", $"{columns.Count} columns but the input '{input.Name}' has shape [{string.Join(", ", input.Shape)}].");
        }

        var duplicate = columns.GroupBy(c => c).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            fail("features.columns", $"'{duplicate.Key}' is listed twice.");
        }

        var entities = features.Entities ?? [];
        var covered = new HashSet<string>(StringComparer.Ordinal);
        for (var e = 0; e < entities.Count; e++)
        {
            var entity = entities[e];
            if (!Identifier().IsMatch(entity.Key) || !Identifier().IsMatch(entity.Table))
            {
                fail($"features.entities[{e}]", "key and table must be identifiers (letters, digits, underscore).");
            }

            foreach (var column in entity.Columns)
            {
                if (!columns.Contains(column))
                {
                    fail($"features.entities[{e}].columns", $"'{column}' is not in features.columns.");
                }

                if (!covered.Add(column))
                {
                    fail($"features.entities[{e}].columns", $"'{column}' comes from two entities.");
                }
            }
        }

        if (features.Source == FeatureSource.Store)
        {
            var missing = columns.Where(c => !covered.Contains(c)).ToList();
            if (missing.Count > 0)
            {
                fail("features.entities", $"no entity provides {string.Join(", ", missing)}.");
            }
        }
    }

    private static void ValidateImage(ImageSpec? image, TensorMetadata input, Action<string, string> fail)
    {
        if (image is null)
        {
            fail("features.image", "an image model needs the image preprocessing spec.");
            return;
        }

        if (image.Width <= 0 || image.Height <= 0 || image.Channels is not (1 or 3))
        {
            fail("features.image", "width and height must be positive and channels 1 or 3.");
        }

        if (image.Layout is not ("nchw" or "nhwc"))
        {
            fail("features.image.layout", $"'{image.Layout}' is not nchw or nhwc.");
        }

        if (image.Resize is not ("bilinear" or "none"))
        {
            fail("features.image.resize", $"'{image.Resize}' is not bilinear or none.");
        }

        if (image.Mean.Count != image.Channels || image.Std.Count != image.Channels || image.Std.Any(s => s == 0))
        {
            fail("features.image", "mean and std need one non-zero value per channel.");
        }

        long[] expected = image.Layout == "nchw"
            ? [image.Channels, image.Height, image.Width]
            : [image.Height, image.Width, image.Channels];
        if (!input.Shape.Skip(1).SequenceEqual(expected))
        {
            fail("features.image", $"{image.Layout} {image.Width}x{image.Height}x{image.Channels} does not match the input shape [{string.Join(", ", input.Shape)}].");
        }
    }

    private static void ValidateHeads(ModelManifest manifest, ModelSession session, Action<string, string> fail)
    {
        if (manifest.Heads.Count == 0)
        {
            fail("heads", "a model needs at least one head.");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < manifest.Heads.Count; i++)
        {
            var head = manifest.Heads[i];
            if (!Identifier().IsMatch(head.Name) || !names.Add(head.Name))
            {
                fail($"heads[{i}].name", $"'{head.Name}' must be a unique identifier.");
            }

            var output = session.Outputs.FirstOrDefault(o => o.Name == head.Output);
            if (output is null)
            {
                fail($"heads[{i}].output", $"'{head.Output}' is not an output of the model (outputs: {string.Join(", ", session.Outputs.Select(o => o.Name))}).");
                return;
            }

            if (output.ElementType != TensorElementType.Float32)
            {
                fail($"heads[{i}].output", $"'{head.Output}' is {output.ElementType.ToName()}; heads read float32 outputs.");
            }

            if (head.Loss is not null && !LossFunctions.All.Contains(head.Loss, StringComparer.Ordinal))
            {
                fail($"heads[{i}].loss", $"'{head.Loss}' is not one of {string.Join(", ", LossFunctions.All)}.");
            }

            var width = output.Shape.Skip(1).Aggregate(1L, (a, d) => a * d);
            if (HeadSpecRules.For(head.Kind).Width is { } expectedWidth && output.Shape.Skip(1).All(d => d > 0) && width != expectedWidth)
            {
                fail($"heads[{i}].output", $"a {head.Kind.ManifestName()} head needs {expectedWidth} value(s) per row; '{head.Output}' has shape [{string.Join(", ", output.Shape)}].");
            }
        }
    }

    private static void ValidateBatching(ModelManifest manifest, ModelSession session, Action<string, string> fail)
    {
        var batching = manifest.Batching;
        if (batching.MaxBatchSize < 1 || batching.MaxQueueSize < 1 || batching.Instances < 1 || batching.MaxQueueDelayMicroseconds < 0)
        {
            fail("batching", "maxBatchSize, maxQueueSize and instances must be at least 1 and maxQueueDelayMicroseconds not negative.");
        }

        if (batching.QueueTimeoutMicroseconds < 0)
        {
            fail("batching.queueTimeoutMicroseconds", "must not be negative (0: no limit).");
        }
        else if (batching.Enabled && batching.QueueTimeoutMicroseconds > 0 && batching.MaxQueueDelayMicroseconds >= batching.QueueTimeoutMicroseconds)
        {
            // A request alone in the queue waits the delay for company, and would reach its timeout first: every such
            // request would be refused unrun.
            fail("batching.maxQueueDelayMicroseconds",
                $"{batching.MaxQueueDelayMicroseconds} is not shorter than queueTimeoutMicroseconds ({batching.QueueTimeoutMicroseconds}): a request waiting " +
                "alone for a batch would time out before the delay ends. Shorten the delay or lengthen the timeout (0: no limit).");
        }

        if (batching.PreferredBatchSizes.Any(s => s < 1 || s > batching.MaxBatchSize))
        {
            fail("batching.preferredBatchSizes", $"every size must be between 1 and maxBatchSize ({batching.MaxBatchSize}).");
        }

        var input = session.Inputs.FirstOrDefault(i => i.Name == manifest.Features.Input);
        if (input is not null && !input.HasDynamicBatch && batching.Enabled && batching.MaxBatchSize > 1)
        {
            fail("batching", $"the input '{input.Name}' has a fixed batch dimension; set batching.enabled to false or maxBatchSize to 1.");
        }
    }

    private static void ValidateLoss(ModelManifest manifest, Action<string, string> fail)
    {
        if (manifest.Loss is not { } loss)
        {
            return;
        }

        if (!Combinations.Contains(loss.Combination))
        {
            fail("loss.combination", $"'{loss.Combination}' is not one of {string.Join(", ", Combinations)}.");
        }

        var heads = manifest.Heads.Select(h => h.Name).ToHashSet();
        foreach (var key in (loss.Weights?.Keys ?? Enumerable.Empty<string>()).Concat(loss.LogVariances?.Keys ?? Enumerable.Empty<string>()))
        {
            if (!heads.Contains(key))
            {
                fail("loss", $"'{key}' is not a head of the model.");
            }
        }

        if (loss.Combination == "uncertainty" && manifest.Heads.Any(h => loss.LogVariances?.ContainsKey(h.Name) != true && h.Loss is not null))
        {
            fail("loss.logVariances", "uncertainty weighting needs a learned log-variance for every head with a loss.");
        }
    }
}
