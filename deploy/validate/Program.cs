using MultiHeadServe.ManifestValidation;

// Checks Kubernetes manifests against the schemas of their kinds (see ManifestValidator):
//
//   dotnet run --project deploy/validate -- [--label <name>] <file.yaml | -> ...
//
// "-" reads a YAML stream from standard input, named by --label (a rendered Kustomize build). Prints one line per
// problem ("file:line: Kind/name: field: message") and exits 1 if there was any, 2 on a usage error.
var label = "(stdin)";
var files = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--label" && i + 1 < args.Length)
    {
        label = args[++i];
    }
    else
    {
        files.Add(args[i]);
    }
}

if (files.Count == 0)
{
    Console.Error.WriteLine("usage: validate [--label <name>] <file.yaml | -> ...");
    return 2;
}

var validator = new ManifestValidator(ManifestValidator.DefaultSchemaDirectory);
var checkedCount = 0;
var failures = 0;
foreach (var file in files)
{
    var text = file == "-" ? await Console.In.ReadToEndAsync() : await File.ReadAllTextAsync(file);
    var problems = validator.Validate(text, file == "-" ? label : file, out var manifests);
    checkedCount += manifests;
    foreach (var problem in problems)
    {
        Console.WriteLine(problem);
    }

    failures += problems.Count;
}

Console.WriteLine($"{string.Join(", ", files.Select(file => file == "-" ? label : file))}: {checkedCount} manifest(s) checked against their schemas, {failures} problem(s)");
return failures > 0 ? 1 : 0;
