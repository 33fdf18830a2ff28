namespace MultiHeadServe.Heads;

/// <summary>Decodes every requested head of one request from the outputs of the model's single run.</summary>
public static class HeadDecoding
{
    /// <summary>
    /// Decodes row <paramref name="row"/> of each decoder's output, in the decoders' order (the order the
    /// combined response lists the heads in).
    /// </summary>
    /// <param name="decoders">The heads to answer, e.g. the request's subset of the model's decoders.</param>
    /// <param name="outputs">The run's outputs, keyed by ONNX output name.</param>
    /// <param name="row">The request's row in the batch.</param>
    /// <param name="context">What the decoders may need to know about the request.</param>
    /// <returns>Each head's result keyed by head name.</returns>
    /// <exception cref="HeadOutputException">A head's output is missing from the run or cannot be decoded.</exception>
    public static OrderedDictionary<string, HeadResult> DecodeAll(
        IEnumerable<HeadDecoder> decoders,
        IReadOnlyDictionary<string, OutputTensor> outputs,
        int row,
        DecodeContext context)
    {
        ArgumentNullException.ThrowIfNull(decoders);
        ArgumentNullException.ThrowIfNull(outputs);
        var results = new OrderedDictionary<string, HeadResult>(StringComparer.Ordinal);
        foreach (var decoder in decoders)
        {
            if (!outputs.TryGetValue(decoder.OutputName, out var output))
            {
                throw new HeadOutputException(decoder.HeadName, $"the run produced no output '{decoder.OutputName}'");
            }

            results.Add(decoder.HeadName, decoder.Decode(output.Row(row), context));
        }

        return results;
    }
}
