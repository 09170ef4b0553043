using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Akka.Actor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sweep.Orchestrator.Hosting;
using Sweep.Orchestrator.Journal;
using Sweep.Protocol.Events;
using Sweep.Orchestrator.Views;

namespace Sweep.Orchestrator.Dashboard;

/// <summary>
/// `sweep dashboard`: a read-only web view of a journal. A JSON API over <see cref="SweepJournal"/>
/// (list, status, server-sent events, logs, report files) and a single static page. It only ever
/// reads: the journal through <see cref="SweepJournal"/> (no actor system), the logs and the report
/// folder from disk.
/// </summary>
public static partial class DashboardServer
{
    /// <summary>Where `sweep dashboard` and `sweep run --dashboard` listen unless told otherwise: this machine only.</summary>
    public const string DefaultBind = "127.0.0.1";

    /// <summary>The dashboard's HTTP port unless told otherwise.</summary>
    public const int DefaultPort = 5080;

    /// <summary>The page's policy: scripts, styles, images and connections only from this origin; no inline script.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    /// <summary>Where the page's files are: copied next to the program at build time.</summary>
    public static string WebRoot => Path.Combine(AppContext.BaseDirectory, "Dashboard", "wwwroot");

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    private const int MaxLogLines = 2000;

    /// <summary>
    /// Builds the dashboard's web application on <paramref name="journal"/>.
    /// <paramref name="configureHost"/> picks the server: Kestrel on an address (<see cref="UseKestrel"/>) or a test server.
    /// </summary>
    public static WebApplication Build(JournalSettings journal, Action<WebApplicationBuilder> configureHost)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            EnvironmentName = Environments.Production,
            ContentRootPath = AppContext.BaseDirectory,
            WebRootPath = WebRoot,
            Args = [],
        });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        configureHost(builder);
        var app = builder.Build();
        var stopping = app.Lifetime.ApplicationStopping;

        app.UseExceptionHandler(error => error.Run(context => Error(StatusCodes.Status500InternalServerError, "internal error").ExecuteAsync(context)));
        app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.ContentSecurityPolicy = ContentSecurityPolicy;
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            headers.XFrameOptions = "DENY";
            await next(context);
        });
        var files = new PhysicalFileProvider(WebRoot);
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            OnPrepareResponse = context => context.Context.Response.Headers.CacheControl = "no-cache",
        });

        app.MapGet("/api/sweeps", async () =>
        {
            var list = new List<object>();
            foreach (var id in await SweepJournal.ListAsync(journal))
            {
                if (await SweepJournal.ReadAsync(journal, id) is { } s)
                {
                    var owner = await SweepLiveness.ReadAsync(journal, s.SweepId, s.Phase == SweepPhase.Running);
                    list.Add(new { sweepId = s.SweepId, name = s.Definition.Name, state = s.Phase.ToString(), ownerGone = owner?.OwnerGone ?? false, owner = owner?.Summary, trials = s.Trials.Count, finished = s.FinishedCount, startedAt = s.StartedAt });
                }
            }
            return Results.Json(list, Json);
        });

        app.MapGet("/api/sweeps/{id}", async (string id) =>
            !IsValidId(id) || await SweepJournal.ReadAsync(journal, id) is not { } state
                ? UnknownSweep(id)
                : Results.Text(StatusView.ToJson(state, await SweepLiveness.ReadAsync(journal, id, state.Phase == SweepPhase.Running)), "application/json; charset=utf-8"));

        app.MapGet("/api/sweeps/{id}/events", async (string id, HttpContext context) =>
        {
            if (!IsValidId(id) || await SweepJournal.ReadAsync(journal, id) is null)
            {
                await UnknownSweep(id).ExecuteAsync(context);
                return;
            }
            long.TryParse(context.Request.Headers["Last-Event-ID"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out long alreadySeen);
            await StreamEventsAsync(journal, id, alreadySeen, context, stopping);
        });

        app.MapGet("/api/sweeps/{id}/logs", async (string id, string? trial) =>
        {
            if (!IsValidId(id) || await SweepJournal.ReadAsync(journal, id) is null) return UnknownSweep(id);
            return Results.Json(DashboardLogs.Read(SweepLogging.Directory(journal), id, trial, MaxLogLines), Json);
        });

        app.MapGet("/api/sweeps/{id}/report", (string id) =>
        {
            if (!IsValidId(id) || ReportFolder(journal, id) is not { } folder) return Error(StatusCodes.Status404NotFound, $"no report for sweep '{Clip(id)}'");
            return Results.Json(new { files = ReportFiles(folder).Select(Path.GetFileName).ToList() }, Json);
        });

        app.MapGet("/api/sweeps/{id}/report/{file}", (string id, string file) =>
        {
            if (!IsValidId(id) || ReportFolder(journal, id) is not { } folder) return Error(StatusCodes.Status404NotFound, $"no report for sweep '{Clip(id)}'");
            // Only a plain name of a file that is in the folder: no separators, no '..', nothing the listing does not show.
            var path = ReportFiles(folder).FirstOrDefault(f => string.Equals(Path.GetFileName(f), file, StringComparison.Ordinal));
            if (!ReportFileName().IsMatch(file) || path is null) return Error(StatusCodes.Status404NotFound, "no such report file");
            return Results.File(path, ContentType(path));
        });

        app.MapFallback("/api/{**rest}", () => Error(StatusCodes.Status404NotFound, "no such endpoint"));
        return app;
    }

    /// <summary>
    /// Listens with Kestrel on <paramref name="bind"/> (an IP address or "localhost") and <paramref name="port"/> (0: a free one).
    /// "localhost" is the IPv4 and IPv6 loopback on a fixed port, and the IPv4 loopback with port 0 (Kestrel
    /// cannot pick one free port on both). Anything else is refused here, before a server is built.
    /// </summary>
    public static Action<WebApplicationBuilder> UseKestrel(string bind, int port)
    {
        bool localhost = string.Equals(bind, "localhost", StringComparison.OrdinalIgnoreCase);
        IPAddress? address = localhost ? null
            : IPAddress.TryParse(bind, out var parsed) ? parsed
            : throw new Protocol.InvalidInputException($"--bind {bind}: not an IP address (or localhost)");
        return builder => builder.WebHost.UseKestrel(kestrel =>
        {
            if (address is not null) kestrel.Listen(address, port);
            else if (port == 0) kestrel.Listen(IPAddress.Loopback, 0);
            else kestrel.ListenLocalhost(port);
        });
    }

    /// <summary>The addresses a started application listens on (the real port when 0 was asked for).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];

    /// <summary>The event type as the stream names it: TrialProgress becomes trial-progress.</summary>
    public static string EventType(ISweepEvent e) => KebabBoundary().Replace(e.GetType().Name, "$1-$2").ToLowerInvariant();

    /// <summary>
    /// Server-sent events: the sweep's history, then each event as the journal's poll sees it, numbered
    /// from 1 (a reconnecting EventSource sends the last number back and gets only what follows). After
    /// SweepCompleted an `end` event closes the stream.
    /// </summary>
    private static async Task StreamEventsAsync(JournalSettings journal, string id, long alreadySeen, HttpContext context, CancellationToken stopping)
    {
        using var done = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        var response = context.Response;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        var events = Channel.CreateUnbounded<ISweepEvent>(new UnboundedChannelOptions { SingleReader = true });
        var follow = SweepJournal.FollowAsync(journal, id, e => events.Writer.TryWrite(e) && !done.IsCancellationRequested, done.Token)
            .ContinueWith(t => events.Writer.TryComplete(t.Exception), TaskScheduler.Default);
        try
        {
            await response.WriteAsync("retry: 2000\n\n", done.Token);
            await response.Body.FlushAsync(done.Token);
            long number = 0;
            while (await events.Reader.WaitToReadAsync(done.Token))
            {
                var text = new StringBuilder();
                bool end = false;
                while (events.Reader.TryRead(out var e))
                {
                    if (++number <= alreadySeen) continue;
                    text.Append(CultureInfo.InvariantCulture, $"id: {number}\nevent: {EventType(e)}\ndata: {JsonSerializer.Serialize(e, e.GetType(), Json)}\n\n");
                    if (e is SweepCompleted)
                    {
                        text.Append("event: end\ndata: {}\n\n");
                        end = true;
                        break;
                    }
                }
                await response.WriteAsync(text.ToString(), done.Token);
                await response.Body.FlushAsync(done.Token);
                if (end) break;
            }
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
            // The page went away or the server is stopping.
        }
        finally
        {
            await done.CancelAsync();
            await follow;
        }
    }

    private static string? ReportFolder(JournalSettings journal, string id)
    {
        var folder = Path.Combine(journal.DataDirectory, id, "report");
        return Directory.Exists(folder) ? folder : null;
    }

    private static IEnumerable<string> ReportFiles(string folder) =>
        Directory.EnumerateFiles(folder).Where(f => ReportFileName().IsMatch(Path.GetFileName(f))).Order(StringComparer.Ordinal);

    private static string ContentType(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".png" => "image/png",
        ".csv" => "text/csv; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };

    private static bool IsValidId(string id) => ValidId().IsMatch(id);

    private static IResult UnknownSweep(string id) => Error(StatusCodes.Status404NotFound, $"no sweep '{Clip(id)}'");

    private static IResult Error(int status, string message) => Results.Json(new { error = message }, Json, statusCode: status);

    private static string Clip(string text) => text.Length <= 100 ? text : text[..100] + "…";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    private static partial Regex ValidId();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.(md|png|csv)$")]
    private static partial Regex ReportFileName();

    [GeneratedRegex("([a-z0-9])([A-Z])")]
    private static partial Regex KebabBoundary();
}
