using MultiHeadServe.Heads;

namespace MultiHeadServe.Tests.Heads;

public sealed class OutputTensorTests
{
    [Fact]
    public void ScalarPerRowShapeHasWidthOne()
    {
        var tensor = TestHeads.Tensor("y", [3], 1f, 2f, 3f);

        Assert.Equal(3, tensor.Rows);
        Assert.Equal(1, tensor.Width);
        Assert.Equal([2f], tensor.Row(1).ToArray());
    }

    [Fact]
    public void WidthIsTheProductOfTheDimensionsAfterTheBatch()
    {
        var tensor = TestHeads.Tensor("y", [2, 2, 3], [.. Enumerable.Range(0, 12).Select(i => (float)i)]);

        Assert.Equal(2, tensor.Rows);
        Assert.Equal(6, tensor.Width);
        Assert.Equal([6f, 7f, 8f, 9f, 10f, 11f], tensor.Row(1).ToArray());
    }

    [Fact]
    public void ColumnShapeReadsTheSameRowsAsAFlatShape()
    {
        var column = TestHeads.Tensor("y", [2, 1], 4f, 5f);

        Assert.Equal(1, column.Width);
        Assert.Equal([5f], column.Row(1).ToArray());
    }

    [Fact]
    public void DataThatDisagreesWithTheShapeIsRefused()
    {
        var tensor = TestHeads.Tensor("bbox", [2, 4], 1f, 2f, 3f);

        var error = Assert.Throws<InvalidOperationException>(() => tensor.Row(0));

        Assert.Contains("'bbox' holds 3 values but its shape [2, 4] needs 8", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RowOutsideTheBatchIsRefused()
    {
        var tensor = TestHeads.Tensor("y", [2], 1f, 2f);

        Assert.Throws<ArgumentOutOfRangeException>(() => tensor.Row(2));
    }
}
