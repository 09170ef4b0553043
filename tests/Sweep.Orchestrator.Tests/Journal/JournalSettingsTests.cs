using Sweep.Orchestrator.Hosting;

namespace Sweep.Orchestrator.Tests.Journal;

/// <summary>How --journal's text is told apart: a PostgreSQL connection string, or a SQLite file (whatever characters its name has).</summary>
public sealed class JournalSettingsTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("sweep-journal-settings-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    [Theory]
    [InlineData("Host=localhost;Database=sweep;Username=sweep", true)]
    [InlineData("Host=;Database", true)]
    [InlineData("Host=localhost;Port=abc", true)]
    [InlineData("Server=localhost;Database=sweep", true)]
    [InlineData("server = db", true)]
    [InlineData("Database=sweep", true)]
    [InlineData("sslmode=require;Host=db", true)]
    [InlineData("sweep-data/journal.db", false)]
    [InlineData("/data/journal.db", false)]
    [InlineData("/data/x=1;y.db", false)]
    [InlineData("./a=b;c.db", false)]
    [InlineData("a=b.db", false)]
    [InlineData("we;ird.db", false)]
    [InlineData("", false)]
    public void A_journal_is_a_connection_string_when_it_starts_with_a_key_or_holds_keys_and_values(string journal, bool connectionString) =>
        Assert.Equal(connectionString, JournalSettings.IsConnectionString(journal));

    [Fact]
    public void A_file_that_exists_is_a_sqlite_journal_whatever_its_name()
    {
        var odd = Path.Combine(temp, "Host=x;Database=y");
        File.WriteAllText(odd, "");

        Assert.False(new JournalSettings(temp, odd).IsPostgres);
    }

    [Fact]
    public void A_sqlite_path_with_semicolons_and_equals_signs_stays_one_path_in_its_connection_string()
    {
        var odd = Path.Combine(temp, "a=b;c'd\".db");
        var settings = new JournalSettings(temp, odd);

        Assert.False(settings.IsPostgres);
        Assert.Null(settings.ConnectionStringProblem());
        Assert.Equal(odd, new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(settings.ConnectionString).DataSource);
    }

    [Theory]
    [InlineData("Host=localhost;Database=sweep;Username=sweep;Password=secret", null)]
    [InlineData("Server=localhost;Database=sweep", null)]
    [InlineData("Host=;Database", "Format of the initialization string does not conform to specification starting at index 6.")]
    [InlineData("Host=localhost;Port=abc", "Couldn't set port (Parameter 'port'): The input string 'abc' was not in a correct format.")]
    [InlineData("Host=;Database=sweep", "it names no host (Host=…)")]
    [InlineData("Host=localhost;Databse=sweep", "Couldn't set databse (Parameter 'databse'): The given key was not present in the dictionary.")]
    public void A_bad_connection_string_is_said_in_npgsqls_words(string journal, string? problem) =>
        Assert.Equal(problem, new JournalSettings(temp, journal).ConnectionStringProblem());

    [Fact]
    public void The_reason_never_shows_the_password_even_when_a_semicolon_in_it_turns_it_into_a_key()
    {
        var problem = new JournalSettings(temp, "Host=localhost;Password=s3cr;et9;Database=sweep").ConnectionStringProblem();

        Assert.NotNull(problem);
        Assert.DoesNotContain("s3cr", problem);
        Assert.DoesNotContain("et9", problem);
    }

    [Fact]
    public void A_sqlite_journal_has_no_connection_string_problem() =>
        Assert.Null(new JournalSettings(temp, Path.Combine(temp, "journal.db")).ConnectionStringProblem());
}
