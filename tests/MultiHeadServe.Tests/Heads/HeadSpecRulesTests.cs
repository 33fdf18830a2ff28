using System.Text.Json;
using MultiHeadServe.Api;
using MultiHeadServe.Heads;
using MultiHeadServe.Models;

namespace MultiHeadServe.Tests.Heads;

/// <summary>Every head kind has its rules, a decoder and a result schema, and its results carry the kind's manifest name.</summary>
public sealed class HeadSpecRulesTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    public static TheoryData<HeadKind> Kinds() => [.. Enum.GetValues<HeadKind>()];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EveryKindDecodesToAResultNamedAsTheManifestNamesTheKind(HeadKind kind)
    {
        var rule = HeadSpecRules.For(kind);
        var width = rule.Width ?? 4;
        var decoder = HeadDecoder.Create(new HeadSpec { Name = "h", Output = "h_out", Kind = kind, Activation = rule.Activations[0] }, outputWidth: width);

        var result = decoder.Decode(Enumerable.Range(1, width).Select(i => i / 10f).ToArray(), DecodeContext.None);

        Assert.Equal((kind, kind), (decoder.Kind, result.Kind));
        var json = JsonSerializer.SerializeToElement(result, Web);
        Assert.Equal(kind.ManifestName(), json.GetProperty("kind").GetString());
        Assert.Contains((kind.ManifestName(), result.GetType().Name), OpenApiContract.HeadKindSchemas);
    }

    [Fact]
    public void OptionsAKindDoesNotReadAreNotHeldAgainstIt()
    {
        // topK, threshold, scale and box format mean nothing to an embedding head: its defaults or odd values do not stop it.
        var spec = TestHeads.Spec("vector", "embedding") with { TopK = 0, Threshold = 2f, Scale = 0f };

        var result = Assert.IsType<EmbeddingResult>(HeadDecoder.Create(spec).Decode([3f, 4f], DecodeContext.None));

        Assert.Equal(5f, result.Norm);
    }
}
