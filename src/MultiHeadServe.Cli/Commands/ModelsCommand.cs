using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace MultiHeadServe.Cli.Commands;

/// <summary>
/// <c>mhs models list|load|unload|stats --url … --api-key …</c>: the client side of a running service's model repository
/// API (the Open Inference Protocol's <c>/v2/repository</c>, which the service offers when API keys are configured) and
/// of its statistics (<c>/v2/models/stats</c>, Triton's statistics extension, served with or without keys).
/// The URL and key may also come from <c>MHS_URL</c> and <c>MHS_API_KEY</c>, so a key stays out of shell history.
/// </summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var url = new Option<string>("--url")
        {
            Description = "The service's base address, e.g. http://localhost:8080 (default: $MHS_URL).",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("MHS_URL") ?? "",
        };
        var apiKey = new Option<string>("--api-key")
        {
            Description = "An API key the service accepts (default: $MHS_API_KEY).",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("MHS_API_KEY") ?? "",
        };
        var json = new Option<bool>("--json") { Description = "Print the index as the service returns it (JSON)." };
        var ready = new Option<bool>("--ready") { Description = "Only what is ready." };

        var list = new Command("list", "Every model and version of the repository with its state and, when unavailable, why.") { url, apiKey, json, ready };
        list.SetAction(parsed =>
        {
            var body = parsed.GetValue(ready) ? """{"ready":true}""" : "{}";
            var (status, text) = Send(parsed.GetValue(url), parsed.GetValue(apiKey), "repository/index", body);
            if (status != HttpStatusCode.OK)
            {
                return Fail(parsed, status, text);
            }

            if (parsed.GetValue(json))
            {
                parsed.InvocationConfiguration.Output.WriteLine(text);
                return ExitCodes.Success;
            }

            var table = new TextTable("model", "version", "state", "reason");
            using var document = JsonDocument.Parse(text);
            foreach (var entry in document.RootElement.EnumerateArray())
            {
                table.Add(Field(entry, "name"), Field(entry, "version"), Field(entry, "state"), Field(entry, "reason"));
            }

            table.WriteTo(parsed.InvocationConfiguration.Output, "");
            return ExitCodes.Success;
        });

        var model = new Argument<string>("model") { Description = "The model's name (its folder in the repository)." };
        var load = new Command("load", "Load or reload a model: new and changed versions are loaded, validated, warmed and swapped in.") { model, url, apiKey };
        load.SetAction(parsed => Control(parsed, url, apiKey, model, "load", "Loaded"));
        var unload = new Command("unload", "Stop serving a model; requests already running finish.") { model, url, apiKey };
        unload.SetAction(parsed => Control(parsed, url, apiKey, model, "unload", "Unloaded"));

        var statsModel = new Argument<string>("model")
        {
            Description = "One model's versions (default: every model).",
            Arity = ArgumentArity.ZeroOrOne,
            DefaultValueFactory = _ => "",
        };
        var stats = new Command("stats", "Each served version's requests, rows, runs and average queue and run time since it was loaded (Triton's statistics).")
        {
            statsModel, url, apiKey, json,
        };
        stats.SetAction(parsed =>
        {
            var name = parsed.GetValue(statsModel);
            var path = string.IsNullOrEmpty(name) ? "models/stats" : $"models/{Uri.EscapeDataString(name)}/stats";
            var (status, text) = Send(parsed.GetValue(url), parsed.GetValue(apiKey), path, null);
            if (status != HttpStatusCode.OK)
            {
                return Fail(parsed, status, text);
            }

            if (parsed.GetValue(json))
            {
                parsed.InvocationConfiguration.Output.WriteLine(text);
                return ExitCodes.Success;
            }

            var table = new TextTable("model", "version", "requests", "failed", "rows", "runs", "rows/run", "queue ms", "run ms");
            using var document = JsonDocument.Parse(text);
            foreach (var entry in document.RootElement.GetProperty("model_stats").EnumerateArray())
            {
                var inference = entry.GetProperty("inference_stats");
                var rows = entry.GetProperty("inference_count").GetInt64();
                var runs = entry.GetProperty("execution_count").GetInt64();
                table.Add(Field(entry, "name"), Field(entry, "version"), Count(inference, "success"), Count(inference, "fail"),
                    rows.ToString(CultureInfo.InvariantCulture), runs.ToString(CultureInfo.InvariantCulture),
                    runs == 0 ? "-" : ((double)rows / runs).ToString("0.0", CultureInfo.InvariantCulture),
                    AverageMilliseconds(inference, "queue"), AverageMilliseconds(inference, "compute_infer"));
            }

            table.WriteTo(parsed.InvocationConfiguration.Output, "");
            return ExitCodes.Success;
        });

        return new Command("models", "List, load, unload and see the statistics of the models of a running service (its model repository API).")
        {
            list, load, unload, stats,
        };
    }

    private static string Count(JsonElement inference, string name) =>
        inference.GetProperty(name).GetProperty("count").GetInt64().ToString(CultureInfo.InvariantCulture);

    /// <summary>A duration statistic's mean per count, in milliseconds ("-" before the first).</summary>
    private static string AverageMilliseconds(JsonElement inference, string name)
    {
        var count = inference.GetProperty(name).GetProperty("count").GetInt64();
        return count == 0 ? "-" : (inference.GetProperty(name).GetProperty("ns").GetInt64() / 1e6 / count).ToString("0.000", CultureInfo.InvariantCulture);
    }

    private static int Control(ParseResult parsed, Option<string> url, Option<string> apiKey, Argument<string> model, string action, string done)
    {
        var name = parsed.GetRequiredValue(model);
        var (status, text) = Send(parsed.GetValue(url), parsed.GetValue(apiKey), $"repository/models/{Uri.EscapeDataString(name)}/{action}", "{}");
        if (status != HttpStatusCode.OK)
        {
            return Fail(parsed, status, text);
        }

        parsed.InvocationConfiguration.Output.WriteLine($"{done} {name}.");
        return ExitCodes.Success;
    }

    /// <summary>POSTs <paramref name="body"/> to <c>/v2/</c><paramref name="path"/> (a GET when it is null).</summary>
    private static (HttpStatusCode Status, string Body) Send(string? url, string? apiKey, string path, string? body)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            throw new UsageException("--url is required (or set MHS_URL).");
        }

        if (!Uri.TryCreate(url.TrimEnd('/') + "/", UriKind.Absolute, out var baseAddress) || baseAddress.Scheme is not ("http" or "https"))
        {
            throw new UsageException($"--url '{url}' is not an http(s) address.");
        }

        using var client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromMinutes(5) };
        using var request = body is null
            ? new HttpRequestMessage(HttpMethod.Get, "v2/" + path)
            : new HttpRequestMessage(HttpMethod.Post, "v2/" + path) { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        if (!string.IsNullOrEmpty(apiKey))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        try
        {
            using var response = client.Send(request);
            using var reader = new StreamReader(response.Content.ReadAsStream());
            return (response.StatusCode, reader.ReadToEnd());
        }
        catch (HttpRequestException ex)
        {
            throw new IOException($"cannot reach {baseAddress}: {ex.Message}", ex);
        }
        catch (TaskCanceledException ex)
        {
            throw new IOException($"{baseAddress} did not answer within {client.Timeout.TotalMinutes:0} minutes.", ex);
        }
    }

    /// <summary>The service's <c>{"error": …}</c> (or the status when the body has none), exit code 1.</summary>
    private static int Fail(ParseResult parsed, HttpStatusCode status, string body)
    {
        var message = $"the service answered {(int)status} {status}";
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object &&
                (document.RootElement.TryGetProperty("error", out var error) || document.RootElement.TryGetProperty("detail", out error)) &&
                error.ValueKind == JsonValueKind.String)
            {
                message += $": {error.GetString()}";
            }
        }
        catch (JsonException)
        {
        }

        parsed.InvocationConfiguration.Error.WriteLine($"mhs: {message}");
        return ExitCodes.Failure;
    }

    private static string Field(JsonElement entry, string name) =>
        entry.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";
}
