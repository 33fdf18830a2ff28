using System.Globalization;
using MultiHeadServe.Features.Store;

namespace MultiHeadServe.Tests.Features.Store;

/// <summary>
/// What every backing store must do, run against each real store: a fresh store and a directory of
/// CSV files per test.
/// </summary>
public abstract class FeatureStoreBehaviourTests : IAsyncLifetime
{
    // A path rather than an owned TemporaryDirectory: xunit disposes through IAsyncLifetime here.
    private readonly string _files = Directory.CreateTempSubdirectory("mhs-store-").FullName;
    private IFeatureStoreWriter? _store;

    protected IFeatureStoreWriter Store => _store ?? throw new InvalidOperationException("The store is created in InitializeAsync.");

    protected abstract string ExpectedKind { get; }

    /// <summary>The key column a described table reports: the CSV's, where the store keeps it.</summary>
    protected virtual string ExpectedKeyColumn => "user_id";

    public async Task InitializeAsync() => _store = await CreateStoreAsync();

    public async Task DisposeAsync()
    {
        switch (_store)
        {
            case IAsyncDisposable asyncDisposable:
                await asyncDisposable.DisposeAsync();
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }

        TemporaryDirectory.Delete(_files);
    }

    /// <summary>A new, empty store of the kind under test.</summary>
    protected abstract Task<IFeatureStoreWriter> CreateStoreAsync();

    protected string FilesDirectory => _files;

    protected string WriteCsv(string name, params string[] lines) => TemporaryDirectory.Write(_files, name, lines);

    protected string WriteUsers() => WriteCsv(
        "users.csv",
        "user_id,age,tenure,score",
        "u1,31,120,0.25",
        "u2,45,3650,-1.5",
        "u3,18,0,1e-3");

    protected Task<FeatureSeedResult> SeedUsersAsync() => FeatureSeeder.SeedAsync(Store, "users", WriteUsers());

    [Fact]
    public void KindNamesTheBackingStore() => Assert.Equal(ExpectedKind, Store.Kind);

    [Fact]
    public async Task SeededRowsComeBackInTheRequestedColumnOrder()
    {
        var seeded = await SeedUsersAsync();

        Assert.Equal(new FeatureSeedResult("users", FeatureSeedOutcome.Created, 3), seeded);
        var rows = await Store.GetRowsAsync("users", ["u2", "u1", "u3"], ["score", "age"], default);
        Assert.Equal(3, rows.Count);
        FeatureAssert.Row(rows[0], -1.5f, 45f);
        FeatureAssert.Row(rows[1], 0.25f, 31f);
        FeatureAssert.Row(rows[2], 0.001f, 18f);
    }

    [Fact]
    public async Task UnknownKeysComeBackAsNullInTheirPlace()
    {
        await SeedUsersAsync();

        var rows = await Store.GetRowsAsync("users", ["nobody", "u3", "U1", ""], ["tenure"], default);

        Assert.Null(rows[0]);
        FeatureAssert.Row(rows[1], 0f);
        Assert.Null(rows[2]);
        Assert.Null(rows[3]);
    }

    [Fact]
    public async Task ARequestOfHundredsOfKeysIsAnsweredWholeInOneCall()
    {
        var lines = new List<string> { "item_id,price,rating" };
        lines.AddRange(Enumerable.Range(0, 1000).Select(i => string.Create(CultureInfo.InvariantCulture, $"i{i},{i * 0.5},{i % 5}")));
        await FeatureSeeder.SeedAsync(Store, "items", WriteCsv("items.csv", [.. lines]));

        // 256 instances as a ranking request sends them: repeats, gaps and unknown items.
        var keys = Enumerable.Range(0, 256).Select(i => i % 7 == 0 ? $"missing{i}" : $"i{i * 3 % 400}").ToList();
        var rows = await Store.GetRowsAsync("items", keys, ["rating", "price"], default);

        Assert.Equal(keys.Count, rows.Count);
        for (var i = 0; i < keys.Count; i++)
        {
            if (keys[i].StartsWith("missing", StringComparison.Ordinal))
            {
                Assert.Null(rows[i]);
                continue;
            }

            var n = int.Parse(keys[i].AsSpan(1), CultureInfo.InvariantCulture);
            FeatureAssert.Row(rows[i], n % 5, n * 0.5f);
        }
    }

    [Fact]
    public async Task RepeatedKeysGetArraysOfTheirOwn()
    {
        await SeedUsersAsync();

        var rows = await Store.GetRowsAsync("users", ["u1", "u1"], ["age"], default);
        rows[0]![0] = 99;

        FeatureAssert.Row(rows[1], 31f);
    }

    [Fact]
    public async Task NaNMarksAMissingValueAndReadsBackAsNaN()
    {
        await FeatureSeeder.SeedAsync(Store, "users", WriteCsv("users.csv", "user_id,age,score", "u1,NaN,2"));

        var row = (await Store.GetRowsAsync("users", ["u1"], ["age", "score"], default))[0]!;

        Assert.True(float.IsNaN(row[0]));
        Assert.Equal(2f, row[1]);
    }

    [Fact]
    public async Task SeedingAgainLeavesAnExistingTableAloneUnlessReplacing()
    {
        await SeedUsersAsync();
        var changed = WriteCsv("users.csv", "user_id,age,tenure,score", "u1,99,99,99");

        var again = await FeatureSeeder.SeedAsync(Store, "users", changed);
        var untouched = await Store.GetRowsAsync("users", ["u1", "u2"], ["age"], default);
        var replaced = await FeatureSeeder.SeedAsync(Store, "users", changed, replace: true);
        var rewritten = await Store.GetRowsAsync("users", ["u1", "u2"], ["age"], default);

        Assert.Equal(new FeatureSeedResult("users", FeatureSeedOutcome.Skipped, 0), again);
        FeatureAssert.Row(untouched[0], 31f);
        Assert.Equal(new FeatureSeedResult("users", FeatureSeedOutcome.Replaced, 1), replaced);
        FeatureAssert.Row(rewritten[0], 99f);
        Assert.Null(rewritten[1]);
    }

    [Theory]
    [InlineData("user_id,age|u1,1|u2", 3, "expected 2 fields (user_id and 1 features), found 1")]
    [InlineData("user_id,age|u1,1|u2,abc", 3, "'abc' in column 'age' is not a number")]
    [InlineData("user_id,age|u1,1|u2,", 3, "empty value in column 'age'; write NaN for a missing value")]
    [InlineData("user_id,age|u1,1|u1,2", 3, "duplicate key 'u1' (first on line 2)")]
    [InlineData("user_id,age|u1,1|\"u2\",2", 3, "quoted fields are not supported")]
    [InlineData("user_id,age|u1,1|u2,1e39", 3, "'1e39' in column 'age' is not a finite float32 value")]
    [InlineData("user_id,age|u1,1|,2", 3, "empty key in column 'user_id'")]
    [InlineData("user_id,age|u1,1||u2,1,2", 4, "expected 2 fields")]
    [InlineData("user_id,age|u1,1|u2,1,5", 3, "found 3")]
    [InlineData("user_id,age|u1,1|u2,1|u3,3.5.1", 4, "'3.5.1' in column 'age' is not a number")]
    [InlineData("user id,age|u1,1", 1, "column name 'user id' is invalid")]
    [InlineData("user_id,age,Age|u1,1,2", 1, "column 'Age' appears twice")]
    [InlineData("user_id|u1", 1, "header needs a key column and at least one feature column")]
    [InlineData("|u1,1", 1, "header expected")]
    public async Task AMalformedCsvFailsWithFileAndLineAndLeavesNoTable(string content, int line, string reason)
    {
        var path = WriteCsv("users.csv", content.Split('|'));

        var error = await Assert.ThrowsAsync<FeatureCsvException>(() => FeatureSeeder.SeedAsync(Store, "users", path));

        Assert.StartsWith($"{path}:{line}: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        Assert.Equal(line, error.Line);
        Assert.Null(await Store.DescribeTableAsync("users", default));
    }

    [Fact]
    public async Task AnEmptyCsvFailsAtLineOne()
    {
        var path = WriteCsv("users.csv");

        var error = await Assert.ThrowsAsync<FeatureCsvException>(() => FeatureSeeder.SeedAsync(Store, "users", path));

        Assert.StartsWith($"{path}:1: header expected", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFailedReplaceKeepsTheOldTable()
    {
        await SeedUsersAsync();
        var broken = WriteCsv("users.csv", "user_id,age,tenure,score", "u1,1,1,1", "u2,2,2,oops");

        await Assert.ThrowsAsync<FeatureCsvException>(() => FeatureSeeder.SeedAsync(Store, "users", broken, replace: true));

        var rows = await Store.GetRowsAsync("users", ["u1", "u3"], ["age"], default);
        FeatureAssert.Row(rows[0], 31f);
        FeatureAssert.Row(rows[1], 18f);
    }

    [Fact]
    public async Task SeedingADirectoryCreatesOneTablePerCsvFile()
    {
        WriteUsers();
        WriteCsv("items.csv", "item_id,price", "i1,9.5");
        WriteCsv("notes.txt", "not a table");

        var results = await FeatureSeeder.SeedDirectoryAsync(Store, FilesDirectory);

        Assert.Equal(
            [new FeatureSeedResult("items", FeatureSeedOutcome.Created, 1), new FeatureSeedResult("users", FeatureSeedOutcome.Created, 3)],
            results);
        FeatureAssert.Row((await Store.GetRowsAsync("items", ["i1"], ["price"], default))[0], 9.5f);
    }

    [Fact]
    public async Task ACsvFileWhoseNameIsNotATableNameIsRejected()
    {
        WriteCsv("user-data.csv", "user_id,age", "u1,1");

        var error = await Assert.ThrowsAsync<FeatureCsvException>(() => FeatureSeeder.SeedDirectoryAsync(Store, FilesDirectory));

        Assert.Contains("user-data.csv", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DescribeTableReportsTheKeyAndFeatureColumns()
    {
        await SeedUsersAsync();

        var schema = await Store.DescribeTableAsync("users", default);

        Assert.NotNull(schema);
        Assert.Equal(ExpectedKeyColumn, schema.KeyColumn);
        Assert.Equal(["age", "tenure", "score"], schema.Columns);
        Assert.Null(await Store.DescribeTableAsync("items", default));
    }

    [Theory]
    [InlineData("users; DROP TABLE users")]
    [InlineData("users\" --")]
    [InlineData("users\n")]
    [InlineData("1users")]
    [InlineData("us ers")]
    [InlineData("usérs")]
    [InlineData("")]
    public async Task InvalidTableNamesAreRejectedBeforeAnySqlIsBuilt(string table)
    {
        await SeedUsersAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => Store.GetRowsAsync(table, ["u1"], ["age"], default).AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => Store.DescribeTableAsync(table, default).AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => FeatureSeeder.SeedAsync(Store, table, WriteUsers()));

        FeatureAssert.Row((await Store.GetRowsAsync("users", ["u1"], ["age"], default))[0], 31f);
    }

    [Theory]
    [InlineData("age FROM users; --")]
    [InlineData("age\"")]
    [InlineData("age,score")]
    [InlineData("a123456789b123456789c123456789d123456789e123456789f123456789g1234")]
    public async Task InvalidColumnNamesAreRejected(string column)
    {
        await SeedUsersAsync();

        var error = await Assert.ThrowsAsync<ArgumentException>(() => Store.GetRowsAsync("users", ["u1"], ["age", column], default).AsTask());

        Assert.Contains("column", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeysAreDataNeverSql()
    {
        await SeedUsersAsync();

        var rows = await Store.GetRowsAsync("users", ["u1' OR '1'='1", "u2\"); DROP TABLE users; --"], ["age"], default);

        Assert.All(rows, Assert.Null);
        Assert.NotNull(await Store.DescribeTableAsync("users", default));
    }

    [Fact]
    public async Task AnUnknownTableOrColumnIsASchemaError()
    {
        await SeedUsersAsync();

        var noTable = await Assert.ThrowsAsync<FeatureSchemaException>(() => Store.GetRowsAsync("items", ["i1"], ["price"], default).AsTask());
        var noColumn = await Assert.ThrowsAsync<FeatureSchemaException>(() => Store.GetRowsAsync("users", ["u1"], ["age", "height", "weight"], default).AsTask());

        Assert.Contains("'items' does not exist", noTable.Message, StringComparison.Ordinal);
        Assert.Contains("no column 'height', 'weight'", noColumn.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheKeyColumnIsNotAFeatureColumn()
    {
        await SeedUsersAsync();

        await Assert.ThrowsAsync<FeatureSchemaException>(() => Store.GetRowsAsync("users", ["u1"], ["user_id"], default).AsTask());
    }

    [Fact]
    public async Task AnEmptyKeyListNeedsNoTable()
    {
        var rows = await Store.GetRowsAsync("users", [], ["age"], default);

        Assert.Empty(rows);
    }

    [Fact]
    public async Task ConcurrentLookupsAllGetTheirOwnAnswers()
    {
        await SeedUsersAsync();
        string[] keys = ["u1", "u2", "u3"];
        float[] ages = [31, 45, 18];

        var lookups = Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
        {
            var key = i % 3;
            var rows = await Store.GetRowsAsync("users", [keys[key]], ["age"], default);
            return (Expected: ages[key], Actual: rows[0]![0]);
        }));
        var results = await Task.WhenAll(lookups);

        Assert.All(results, result => Assert.Equal(result.Expected, result.Actual));
    }

    [Fact]
    public async Task AReachableStoreAnswersPing() => Assert.True(await Store.PingAsync(default));

    [Fact]
    public async Task ACancelledLookupThrowsOperationCanceled()
    {
        await SeedUsersAsync();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.GetRowsAsync("users", ["u1"], ["age"], cancelled.Token).AsTask());
    }

    [Fact]
    public async Task ThousandsOfRowsReadBackAsExactlyTheFloatsTheirCsvTextDenotes()
    {
        // Shaped like the ranking demo's users table: zero-padded keys, six columns printed at
        // different precisions, negative values.
        var random = new Random(7);
        var lines = new List<string> { "user_id,user_age,user_tenure_days,user_sessions_per_week,user_avg_basket,user_taste_x,user_taste_y" };
        lines.AddRange(Enumerable.Range(1, 2000).Select(i => string.Create(
            CultureInfo.InvariantCulture,
            $"u{i:D4},{18 + random.Next(62)},{random.NextDouble() * 3650:F0},{random.NextDouble() * 20:F1},{random.NextDouble() * 200:F2},{random.NextDouble() * 3 - 1.5:F3},{random.NextDouble() * 3 - 1.5:F3}")));
        var path = WriteCsv("users.csv", [.. lines]);

        var seeded = await FeatureSeeder.SeedAsync(Store, "users", path);

        Assert.Equal(2000, seeded.RowCount);
        await AssertTableMatchesCsvAsync("users", path);
    }

    /// <summary>Reads every row of <paramref name="csvPath"/> back, a request-sized batch at a time.</summary>
    protected async Task AssertTableMatchesCsvAsync(string table, string csvPath)
    {
        var lines = (await File.ReadAllLinesAsync(csvPath)).Where(line => line.Length > 0).Select(line => line.Split(',')).ToList();
        var columns = lines[0][1..];
        foreach (var batch in lines.Skip(1).Chunk(256))
        {
            var rows = await Store.GetRowsAsync(table, batch.Select(fields => fields[0]).ToList(), columns, default);
            for (var i = 0; i < batch.Length; i++)
            {
                FeatureAssert.Row(rows[i], [.. batch[i][1..].Select(text => float.Parse(text, CultureInfo.InvariantCulture))]);
            }
        }
    }
}
