namespace MultiHeadServe.Tests.Inference;

/// <summary>The models under Models/ (made by make_models.py) and the formulas of their weights.</summary>
internal static class TestModels
{
    public static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "Inference", "Models", name);

    public static string Linear => Path("linear.onnx");

    public static string TwoHeads => Path("two_heads.onnx");

    public static string ElementTypes => Path("element_types.onnx");

    public static string Slow => Path("slow.onnx");

    /// <summary>W[i, j] = a * (i + 1) - b * j, as make_models.py builds it.</summary>
    public static float Weight(int i, int j, float a, float b) => (a * (i + 1)) - (b * j);

    /// <summary>b[j] = c * (j + 1).</summary>
    public static float Bias(int j, float c) => c * (j + 1);

    /// <summary>x @ W + b in double precision, for a row-major [rows, inDim] input.</summary>
    public static double[] Affine(float[] x, int rows, int inDim, int outDim, float a, float b, float c)
    {
        var y = new double[rows * outDim];
        for (var r = 0; r < rows; r++)
        {
            for (var j = 0; j < outDim; j++)
            {
                double sum = Bias(j, c);
                for (var i = 0; i < inDim; i++)
                {
                    sum += (double)x[(r * inDim) + i] * Weight(i, j, a, b);
                }

                y[(r * outDim) + j] = sum;
            }
        }

        return y;
    }

    public static float[] Input(int rows, int cols, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows * cols).Select(_ => (float)((random.NextDouble() * 4) - 2)).ToArray();
    }
}
