using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MultiHeadServe.Models;

/// <summary>
/// Names, sizes and modification times of a model folder's files, hashed: per version folder (with the files
/// outside version folders, which every version reads: the manifest, labels) and for the whole folder.
/// </summary>
internal sealed class ModelFolderFingerprint
{
    private readonly string _common;
    private readonly Dictionary<int, string> _versions;

    private ModelFolderFingerprint(string common, Dictionary<int, string> versions, string whole)
    {
        _common = common;
        _versions = versions;
        Whole = whole;
    }

    public string Whole { get; }

    public string Version(int version) => _common + ":" + _versions.GetValueOrDefault(version, "");

    public static ModelFolderFingerprint Of(string directory)
    {
        var common = new StringBuilder();
        var versions = new Dictionary<int, StringBuilder>();
        if (System.IO.Directory.Exists(directory))
        {
            foreach (var file in new DirectoryInfo(directory).EnumerateFiles("*", SearchOption.AllDirectories).OrderBy(f => f.FullName, StringComparer.Ordinal))
            {
                var relative = Path.GetRelativePath(directory, file.FullName);
                var first = relative.Split(Path.DirectorySeparatorChar)[0];
                var target = common;
                if (relative.Contains(Path.DirectorySeparatorChar, StringComparison.Ordinal) &&
                    int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var version))
                {
                    if (!versions.TryGetValue(version, out target))
                    {
                        target = new StringBuilder();
                        versions[version] = target;
                    }
                }

                target.Append(relative).Append('|').Append(file.Length).Append('|').Append(file.LastWriteTimeUtc.Ticks).Append('\n');
            }
        }

        var commonHash = Hash(common.ToString());
        var perVersion = versions.ToDictionary(v => v.Key, v => Hash(v.Value.ToString()));
        var whole = commonHash + "/" + string.Join(",", perVersion.OrderBy(v => v.Key).Select(v => $"{v.Key}={v.Value}"));
        return new ModelFolderFingerprint(commonHash, perVersion, whole);
    }

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
