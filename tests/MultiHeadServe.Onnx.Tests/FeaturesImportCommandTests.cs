using MultiHeadServe.Cli;
using MultiHeadServe.Features.Store;

namespace MultiHeadServe.Onnx.Tests;

/// <summary><c>mhs features import</c>, run in-process into a SQLite file in a temporary folder (the PostgreSQL and Redis
/// stores are exercised against real servers by the service's tests, through the same import code).</summary>
public sealed class FeaturesImportCommandTests : IDisposable
{
    private readonly DirectoryInfo folder = Directory.CreateTempSubdirectory("mhs-import-tests-");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        folder.Delete(recursive: true);
    }

    [Fact]
    public async Task TheModelRepositoryLoadsEveryDemoTable()
    {
        var (code, output, error) = Run("features", "import", Models(), "--sqlite", PathOf("features.db"));

        Assert.True(code == ExitCodes.Success, error);
        Assert.Matches(@"items\s+created\s+500", output);
        Assert.Matches(@"users\s+created\s+2000", output);
        using var store = new SqliteFeatureStore(PathOf("features.db"));
        var row = (await store.GetRowsAsync("items", ["i0001"], ["item_price", "item_ctr_7d"], default))[0];
        Assert.Equal([34.17f, 0.0519f], row!);
    }

    [Fact]
    public async Task AnyCsvWithAKeyColumnLoadsIntoTheTableNamedAndAgainOnlyWithReplace()
    {
        File.WriteAllLines(PathOf("export.csv"), ["score,account,visits", "0.5,a1,7", "1.25,a2,3"]);

        var first = Run("features", "import", PathOf("export.csv"), "--table", "accounts", "--key", "account", "--sqlite", PathOf("f.db"));
        File.WriteAllLines(PathOf("export.csv"), ["score,account,visits", "9,a1,9"]);
        var again = Run("features", "import", PathOf("export.csv"), "--table", "accounts", "--key", "account", "--sqlite", PathOf("f.db"));
        var kept = await LookupAsync();
        var replaced = Run("features", "import", PathOf("export.csv"), "--table", "accounts", "--key", "account", "--sqlite", PathOf("f.db"), "--replace");
        var rewritten = await LookupAsync();

        Assert.Matches(@"accounts\s+created\s+2", first.Output);
        Assert.Matches(@"accounts\s+skipped\s+0", again.Output);
        Assert.Equal([7f, 0.5f], kept[0]!);
        Assert.Equal([3f, 1.25f], kept[1]!);
        Assert.Matches(@"accounts\s+replaced\s+1", replaced.Output);
        Assert.Equal([9f, 9f], rewritten[0]!);
        Assert.Null(rewritten[1]);

        async Task<IReadOnlyList<float[]?>> LookupAsync()
        {
            using var store = new SqliteFeatureStore(PathOf("f.db"));
            return await store.GetRowsAsync("accounts", ["a1", "a2"], ["visits", "score"], default);
        }
    }

    [Fact]
    public void AMalformedFileFailsNamingItsLine()
    {
        File.WriteAllLines(PathOf("users.csv"), ["user_id,age", "u1,31", "u2,old"]);

        var (code, _, error) = Run("features", "import", PathOf("users.csv"), "--sqlite", PathOf("f.db"));

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains($"{PathOf("users.csv")}:3: 'old' in column 'age' is not a number.", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--key", "id", "no key column 'id'; the columns are user_id, age.")]
    [InlineData("--store", "redis", "FeatureStore:RedisConfiguration is required for the redis provider.")]
    [InlineData("--store", "mysql", "FeatureStore:Provider is 'mysql'")]
    public void BadSettingsAreNamed(string option, string value, string message)
    {
        File.WriteAllLines(PathOf("users.csv"), ["user_id,age", "u1,31"]);

        var (code, _, error) = Run("features", "import", PathOf("users.csv"), "--sqlite", PathOf("f.db"), option, value);

        Assert.NotEqual(ExitCodes.Success, code);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    private string PathOf(string name) => Path.Combine(folder.FullName, name);

    private static string Models()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "MultiHeadServe.sln")))
            {
                return Path.Combine(directory.FullName, "models");
            }
        }

        throw new InvalidOperationException("MultiHeadServe.sln not found above " + AppContext.BaseDirectory);
    }

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CommandLineHost.Run(MhsCommand.Create(), args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
