using System.Text.Json;
using MultiHeadServe.Models;

namespace MultiHeadServe.Heads;

/// <summary>
/// Writes a <see cref="HeadResult"/> as the serializer does (camelCase names, <c>kind</c> first, absent optional
/// members left out) straight to a <see cref="Utf8JsonWriter"/>: the predict routes answer without the serializer's
/// polymorphic machinery. <c>HeadResultJsonTests</c> holds this to the serializer's output for every kind.
/// </summary>
internal static class HeadResultJson
{
    private static readonly JsonEncodedText KindName = JsonEncodedText.Encode("kind");
    private static readonly JsonEncodedText LabelName = JsonEncodedText.Encode("label");
    private static readonly JsonEncodedText IndexName = JsonEncodedText.Encode("index");
    private static readonly JsonEncodedText ProbabilityName = JsonEncodedText.Encode("probability");
    private static readonly JsonEncodedText TopName = JsonEncodedText.Encode("top");
    private static readonly JsonEncodedText ProbabilitiesName = JsonEncodedText.Encode("probabilities");
    private static readonly JsonEncodedText LabelsName = JsonEncodedText.Encode("labels");
    private static readonly JsonEncodedText PositiveName = JsonEncodedText.Encode("positive");
    private static readonly JsonEncodedText DecisionName = JsonEncodedText.Encode("decision");
    private static readonly JsonEncodedText ThresholdName = JsonEncodedText.Encode("threshold");
    private static readonly JsonEncodedText ValueName = JsonEncodedText.Encode("value");
    private static readonly JsonEncodedText ValuesName = JsonEncodedText.Encode("values");
    private static readonly JsonEncodedText BoxName = JsonEncodedText.Encode("box");
    private static readonly JsonEncodedText FormatName = JsonEncodedText.Encode("format");
    private static readonly JsonEncodedText PixelsName = JsonEncodedText.Encode("pixels");
    private static readonly JsonEncodedText XMinName = JsonEncodedText.Encode("xMin");
    private static readonly JsonEncodedText YMinName = JsonEncodedText.Encode("yMin");
    private static readonly JsonEncodedText XMaxName = JsonEncodedText.Encode("xMax");
    private static readonly JsonEncodedText YMaxName = JsonEncodedText.Encode("yMax");
    private static readonly JsonEncodedText VectorName = JsonEncodedText.Encode("vector");
    private static readonly JsonEncodedText NormName = JsonEncodedText.Encode("norm");
    private static readonly Dictionary<HeadKind, JsonEncodedText> Kinds = Enum.GetValues<HeadKind>().ToDictionary(k => k, k => JsonEncodedText.Encode(k.ManifestName()));

    /// <summary>The result as one JSON object value.</summary>
    public static void Write(Utf8JsonWriter writer, HeadResult result)
    {
        writer.WriteStartObject();
        writer.WriteString(KindName, Kinds[result.Kind]);
        switch (result)
        {
            case BinaryResult binary:
                writer.WriteNumber(ProbabilityName, binary.Probability);
                writer.WriteBoolean(DecisionName, binary.Decision);
                writer.WriteNumber(ThresholdName, binary.Threshold);
                break;
            case RegressionResult regression:
                if (regression.Value is { } value)
                {
                    writer.WriteNumber(ValueName, value);
                }

                if (regression.Values is { } values)
                {
                    WriteNumbers(writer, ValuesName, values);
                }

                break;
            case ClassificationResult classification:
                writer.WriteString(LabelName, classification.Label);
                writer.WriteNumber(IndexName, classification.Index);
                writer.WriteNumber(ProbabilityName, classification.Probability);
                writer.WriteStartArray(TopName);
                foreach (var score in classification.Top)
                {
                    writer.WriteStartObject();
                    writer.WriteString(LabelName, score.Label);
                    writer.WriteNumber(IndexName, score.Index);
                    writer.WriteNumber(ProbabilityName, score.Probability);
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WriteStartObject(ProbabilitiesName);
                foreach (var (label, probability) in classification.Probabilities)
                {
                    writer.WriteNumber(label, probability);
                }

                writer.WriteEndObject();
                break;
            case MultilabelResult multilabel:
                writer.WriteStartArray(LabelsName);
                foreach (var decision in multilabel.Labels)
                {
                    writer.WriteStartObject();
                    writer.WriteString(LabelName, decision.Label);
                    writer.WriteNumber(ProbabilityName, decision.Probability);
                    writer.WriteBoolean(PositiveName, decision.Positive);
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WriteStartArray(PositiveName);
                foreach (var label in multilabel.Positive)
                {
                    writer.WriteStringValue(label);
                }

                writer.WriteEndArray();
                break;
            case BoundingBoxResult box:
                WriteBox(writer, BoxName, box.Box);
                writer.WriteString(FormatName, box.Format);
                if (box.Pixels is { } pixels)
                {
                    WriteBox(writer, PixelsName, pixels);
                }

                break;
            case EmbeddingResult embedding:
                WriteNumbers(writer, VectorName, embedding.Vector);
                writer.WriteNumber(NormName, embedding.Norm);
                break;
            default:
                throw new NotSupportedException($"No JSON writer for {result.GetType().Name}.");
        }

        writer.WriteEndObject();
    }

    private static void WriteNumbers(Utf8JsonWriter writer, JsonEncodedText name, IReadOnlyList<float> values)
    {
        writer.WriteStartArray(name);
        foreach (var value in values)
        {
            writer.WriteNumberValue(value);
        }

        writer.WriteEndArray();
    }

    private static void WriteBox(Utf8JsonWriter writer, JsonEncodedText name, BoxCoordinates box)
    {
        writer.WriteStartObject(name);
        writer.WriteNumber(XMinName, box.XMin);
        writer.WriteNumber(YMinName, box.YMin);
        writer.WriteNumber(XMaxName, box.XMax);
        writer.WriteNumber(YMaxName, box.YMax);
        writer.WriteEndObject();
    }
}
