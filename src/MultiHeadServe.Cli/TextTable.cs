namespace MultiHeadServe.Cli;

/// <summary>Left-aligned columns separated by two spaces, for terminal output.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> rows = [headers];

    public TextTable Add(params string[] row)
    {
        rows.Add(row);
        return this;
    }

    public void WriteTo(TextWriter output, string indent = "  ")
    {
        var widths = Enumerable.Range(0, rows[0].Length).Select(column => rows.Max(row => row[column].Length)).ToArray();
        foreach (var row in rows)
        {
            var cells = row.Select((cell, column) => column == row.Length - 1 ? cell : cell.PadRight(widths[column]));
            output.WriteLine((indent + string.Join("  ", cells)).TrimEnd());
        }
    }
}
