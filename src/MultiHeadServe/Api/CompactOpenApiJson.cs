using System.Globalization;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.Swagger;

namespace MultiHeadServe.Api;

/// <summary>
/// Writes the JSON document without indentation: with its examples the indented text was four times the size, one
/// number per line. YAML is written as Swashbuckle writes it.
/// </summary>
public sealed class CompactOpenApiJson : ISwaggerDocumentSerializer
{
    public void SerializeDocument(OpenApiDocument document, IOpenApiWriter writer, OpenApiSpecVersion specVersion)
    {
        if (writer is not OpenApiJsonWriter)
        {
            document.SerializeAs(specVersion, writer);
            return;
        }

        using var text = new StringWriter(CultureInfo.InvariantCulture);
        document.SerializeAs(specVersion, new OpenApiJsonWriter(text, new OpenApiJsonWriterSettings { Terse = true }));
        writer.WriteRaw(text.ToString());
    }
}
