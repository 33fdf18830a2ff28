using System.Globalization;

namespace MultiHeadServe.Heads;

/// <summary>
/// The names of a classification or multilabel head's classes: the manifest's labels file, or "0".."k-1"
/// when the head has none. Immutable, shared by the head's decoder and evaluator.
/// </summary>
internal sealed class ClassLabels
{
    private readonly Dictionary<string, int> _indexByName;

    private ClassLabels(IReadOnlyList<string> names)
    {
        Names = names;
        _indexByName = new Dictionary<string, int>(names.Count, StringComparer.Ordinal);
        for (var i = 0; i < names.Count; i++)
        {
            _indexByName[names[i]] = i;
        }
    }

    public IReadOnlyList<string> Names { get; }

    public int Count => Names.Count;

    /// <summary>Validates a labels file's lines: at least one, none blank, no duplicates (they would collide as JSON keys).</summary>
    public static ClassLabels FromFile(string head, IReadOnlyList<string> labels)
    {
        if (labels.Count == 0)
        {
            throw new HeadSpecException(head, "labels", "the labels file has no labels");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < labels.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(labels[i]))
            {
                throw new HeadSpecException(head, "labels", $"label {i} is blank");
            }

            if (!seen.Add(labels[i]))
            {
                throw new HeadSpecException(head, "labels", $"label '{labels[i]}' appears more than once");
            }
        }

        return new ClassLabels([.. labels]);
    }

    /// <summary>"0".."k-1" for a head without a labels file.</summary>
    public static ClassLabels Numbered(int count)
    {
        var names = new string[count];
        for (var i = 0; i < count; i++)
        {
            names[i] = i.ToString(CultureInfo.InvariantCulture);
        }

        return new ClassLabels(names);
    }

    public bool TryGetIndex(string name, out int index) => _indexByName.TryGetValue(name, out index);

    /// <summary>The valid names for an error message; long lists are cut so the message stays readable.</summary>
    public string Describe()
    {
        const int Shown = 20;
        return Count <= Shown
            ? string.Join(", ", Names)
            : string.Join(", ", Names.Take(Shown)) + $", ... ({Count} in all)";
    }
}

/// <summary>
/// The labels a head uses: its own file, or numbered labels for the width the model actually produced.
/// The numbered set is built once per width and cached; a race only builds it twice.
/// </summary>
internal sealed class ClassLabelSource(ClassLabels? fromFile)
{
    private ClassLabels? _numbered;

    public ClassLabels? FromFile { get; } = fromFile;

    public ClassLabels For(int width)
    {
        if (FromFile is not null)
        {
            return FromFile;
        }

        var numbered = _numbered;
        if (numbered is null || numbered.Count != width)
        {
            numbered = ClassLabels.Numbered(width);
            _numbered = numbered;
        }

        return numbered;
    }
}
