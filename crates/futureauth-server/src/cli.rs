//! The command line: `serve` (default) and the admin commands for projects and keys.

use std::io::Write;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::json;
use thiserror::Error;

use crate::config::{check_duration_aliases, Config, ConfigError};
use crate::error::{FieldErrors, OperatorError, StoreError};
use crate::service::console as ops;
use crate::service::operator::Acting;
use crate::service::projects::{self, ListedProject, Revoke};
use crate::service::settings::{
    parse_callback, parse_origins, FieldParser, ProjectName, ProjectSettings, Sender, SmsCap,
};
use crate::sms::SmsCaps;
use crate::store::{Project, Store};
use futureauth_proto::Region;

/// `futureauth-server [serve]` runs the delivery service; other subcommands administer projects.
#[derive(Debug, Parser)]
#[command(
    name = "futureauth-server",
    version,
    about = "FutureAuth delivery service"
)]
pub struct Cli {
    /// Settings (flags or environment variables).
    #[command(flatten)]
    pub config: Config,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Why the command line (with the environment) was refused.
#[derive(Debug, Error)]
pub enum ParseError {
    /// Not a valid command line; clap's message, `--help` and `--version` included.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// Valid, but contradictory (a duration given in both its forms).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Cli {
    /// Like [`Parser::try_parse_from`], then refuses a duration given in both its
    /// human-readable form and its deprecated alias (`--lease` and `FUTUREAUTH_LEASE_MS`),
    /// which the parsed [`Config`] can no longer tell apart from a default.
    pub fn try_parse_checked_from<I, T>(argv: I) -> Result<Cli, ParseError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(argv)?;
        check_duration_aliases(&matches)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.forget_inherited_sms_cap(&matches);
        Ok(cli)
    }

    /// `project create|update --sms-per-country-per-hour` shares its clap id with the
    /// server's global default of that name, so clap fills the project's option with the
    /// server's value (its default, or `FUTUREAUTH_SMS_PER_COUNTRY_PER_HOUR`) when it is not
    /// given: that would pin today's server default on the project, or overwrite the
    /// project's own cap on an unrelated `project update`. Only a value typed on the command
    /// line is the project's.
    fn forget_inherited_sms_cap(&mut self, matches: &clap::ArgMatches) {
        let Some(Command::Project(project)) = self.command.as_mut() else {
            return;
        };
        let sms = match project {
            ProjectCommand::Create(args) => &mut args.sms,
            ProjectCommand::Update(args) => &mut args.sms,
            ProjectCommand::List { .. } => return,
        };
        let typed = matches
            .subcommand_matches("project")
            .and_then(|m| m.subcommand())
            .and_then(|(_, m)| m.value_source("sms_per_country_per_hour"))
            == Some(clap::parser::ValueSource::CommandLine);
        if !typed {
            sms.sms_per_country_per_hour = None;
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and delivery workers (the default).
    Serve,
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage secret keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage console operators (people who sign in at /dashboard).
    #[command(subcommand)]
    Operator(OperatorCommand),
}

/// `operator …`
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Allow EMAIL to sign in to the console (idempotent).
    Add {
        /// The operator's email address.
        email: String,
    },
    /// Stop EMAIL from using the console: removes the operator, their memberships and tokens
    /// (their open console sessions stop working at once).
    Remove {
        /// The operator's email address.
        email: String,
    },
    /// List operators.
    List,
    /// Create a management API token (`vx_op_…`) for an operator; printed once.
    Token {
        /// The operator's email address.
        email: String,
        /// A label for the token.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

/// `project …`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project and print its secret key (shown once).
    Create(CreateArgs),
    /// Change a project's SMS countries and caps (options not given keep their value).
    Update(UpdateArgs),
    /// List projects.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `project create …`
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// Display name used in every message.
    #[arg(long)]
    pub name: String,
    /// Default magic-link callback URL; its origin is allowed automatically.
    #[arg(long)]
    pub callback_url: Option<String>,
    /// Another allowed callback origin (repeatable).
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
    /// SMS policy: countries and caps.
    #[command(flatten)]
    pub sms: SmsArgs,
    /// Email sender for this project, e.g. `Acme <login@acme.com>`.
    #[arg(long)]
    pub email_from: Option<String>,
    /// Print `{"project_id": "...", "secret_key": "..."}`.
    #[arg(long)]
    pub json: bool,
}

/// `project update …`
#[derive(Debug, Clone, clap::Args)]
pub struct UpdateArgs {
    /// Project id.
    #[arg(long)]
    pub project: String,
    /// SMS policy: countries and caps.
    #[command(flatten)]
    pub sms: SmsArgs,
}

/// A country code flag value (`US`, `gb`).
fn region(raw: &str) -> Result<Region, String> {
    Region::parse(raw.trim()).map_err(|e| format!("{e} (ISO 3166-1 alpha-2)"))
}

/// A project's SMS policy on the command line, parsed by clap into the service's types.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SmsArgs {
    /// Countries the project may send SMS to, as ISO codes: `US,CA,GB` (default on create:
    /// US, CA, GB, IE, DE, FR, NL, ES, IT, AU, NZ). Numbers of other countries, and numbers
    /// in no country, are refused with `sms_country_not_allowed`.
    #[arg(long = "sms-countries", value_delimiter = ',', value_parser = region)]
    pub countries: Option<Vec<Region>>,
    /// Max SMS to one country per hour, 1 to 1000000 (default: the server's
    /// `--sms-per-country-per-hour`). A plain number here: the server's flag of the same
    /// name is global, so clap keeps one type for both.
    #[arg(long)]
    pub sms_per_country_per_hour: Option<u32>,
    /// Max SMS per hour, all countries, 1 to 1000000 (default: the server's
    /// `--sms-per-project-per-hour`).
    #[arg(long)]
    pub sms_per_hour: Option<SmsCap>,
    /// Max SMS per day, all countries, 1 to 1000000 (default: the server's
    /// `--sms-per-project-per-day`).
    #[arg(long)]
    pub sms_per_day: Option<SmsCap>,
}

impl CreateArgs {
    /// The new project's settings; a bad flag is named in its message.
    fn settings(&self) -> Result<ProjectSettings, FieldErrors> {
        let mut f = FieldParser::default();
        let callback = self.callback_url.as_deref();
        let origins = self.allowed_origins.iter().map(String::as_str);
        let sender = self.email_from.as_deref();
        let settings = ProjectSettings {
            name: f.field("--name", ProjectName::parse(&self.name)),
            callback_url: f.given("--callback-url", callback, parse_callback),
            allowed_origins: f.field("--allowed-origin", parse_origins(origins)),
            email_from: f.given("--email-from", sender, Sender::parse),
            ..self.sms.settings(&mut f)
        };
        f.finish(Some(settings))
    }
}

impl SmsArgs {
    /// The flags given, as settings (the others keep their value, or their default).
    fn settings(&self, f: &mut FieldParser) -> ProjectSettings {
        // A plain number from clap (see the field), a cap from here.
        let per_country = self.sms_per_country_per_hour.map(|n| n.to_string());
        ProjectSettings {
            sms_countries: self.countries.clone(),
            sms_per_country_per_hour: f
                .given("--sms-per-country-per-hour", per_country, |n| n.parse())
                .map(Some),
            sms_per_hour: self.sms_per_hour.map(Some),
            sms_per_day: self.sms_per_day.map(Some),
            ..ProjectSettings::default()
        }
    }
}

fn show_caps(c: SmsCaps) -> String {
    let n = |v: Option<u32>| v.map_or("server default".to_owned(), |v| v.to_string());
    format!(
        "{} per country per hour, {} per hour, {} per day",
        n(c.per_country_per_hour),
        n(c.per_hour),
        n(c.per_day)
    )
}

fn countries(p: &Project) -> Vec<&str> {
    p.sms_countries.iter().map(|r| r.as_str()).collect()
}

/// `key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a new key for a project and revoke its old ones.
    Rotate {
        /// Project id.
        #[arg(long)]
        project: String,
        /// Print `{"project_id": "...", "secret_key": "..."}`.
        #[arg(long)]
        json: bool,
    },
    /// Revoke keys by display prefix (first 12 characters) or all keys of a project.
    Revoke {
        /// Display prefix, e.g. `vx_sec_AbCdE`.
        #[arg(long, required_unless_present = "project", conflicts_with = "project")]
        key_prefix: Option<String>,
        /// Revoke every key of this project.
        #[arg(long)]
        project: Option<String>,
    },
}

/// Failure of an admin command.
#[derive(Debug, Error)]
pub enum CliError {
    /// The operator service refused (a bad flag is named in the message).
    #[error("{}", refused(.0))]
    Refused(#[from] OperatorError),
    /// Database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing matched.
    #[error("{0}")]
    NothingMatched(String),
}

/// An operator-service refusal in the CLI's words: `--flag: message; …`.
fn refused(e: &OperatorError) -> String {
    match e {
        OperatorError::Invalid(fields) => fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// [`OperatorError::NotFound`] as the CLI says it.
fn no_project(project: &str) -> impl Fn(OperatorError) -> CliError + '_ {
    move |e| match e {
        OperatorError::NotFound => {
            CliError::NothingMatched(format!("no project with id `{project}`"))
        }
        e => e.into(),
    }
}

/// `{"project_id": "…", "secret_key": "…"}` exactly (with the spaces).
fn key_json(project_id: &str, secret_key: &str) -> String {
    format!(
        "{{\"project_id\": {}, \"secret_key\": {}}}",
        serde_json::Value::from(project_id),
        serde_json::Value::from(secret_key)
    )
}

/// Runs an admin command (anything but `serve`) against `store`, writing to `out`.
pub async fn run_admin(
    command: &Command,
    store: &Store,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        Command::Serve => Ok(()),
        Command::Project(ProjectCommand::Create(args)) => create_project(store, args, out).await,
        Command::Project(ProjectCommand::Update(args)) => update_project(store, args, out).await,
        Command::Project(ProjectCommand::List { json }) => list_projects(store, *json, out).await,
        Command::Operator(cmd) => operator(store, cmd, out).await,
        Command::Key(KeyCommand::Rotate { project, json }) => {
            rotate_key(store, project, *json, out).await
        }
        Command::Key(KeyCommand::Revoke {
            key_prefix,
            project,
        }) => revoke_keys(store, key_prefix.as_deref(), project.as_deref(), out).await,
    }
}

/// `project create`.
async fn create_project(
    store: &Store,
    args: &CreateArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let settings = args.settings().map_err(OperatorError::Invalid)?;
    let created = projects::create_project_with(store, None, settings).await?;
    if args.json {
        writeln!(
            out,
            "{}",
            key_json(&created.project.id, &created.secret_key)
        )?;
        return Ok(());
    }
    let p = &created.project;
    writeln!(out, "Created project {} ({})", p.name, p.id)?;
    writeln!(out, "Allowed origins: {}", p.allowed_origins.join(", "))?;
    writeln!(out, "SMS countries:   {}", countries(p).join(", "))?;
    writeln!(out, "SMS caps:        {}", show_caps(p.sms_caps))?;
    writeln!(
        out,
        "Secret key (shown once, store it now): {}",
        created.secret_key
    )?;
    Ok(())
}

/// `project update`: the same settings service as the console's and the API's, as the
/// server's administrator.
async fn update_project(
    store: &Store,
    args: &UpdateArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let project = store
        .get_project(&args.project)
        .await?
        .ok_or(OperatorError::NotFound)
        .map_err(no_project(&args.project))?;
    let mut f = FieldParser::default();
    let settings = args.sms.settings(&mut f);
    let settings = f.finish(Some(settings)).map_err(OperatorError::Invalid)?;
    let p = projects::update_settings(store, Acting::Admin, &project, settings)
        .await
        .map_err(no_project(&args.project))?;
    writeln!(out, "Updated project {} ({})", p.name, p.id)?;
    writeln!(out, "SMS countries:   {}", countries(&p).join(", "))?;
    writeln!(out, "SMS caps:        {}", show_caps(p.sms_caps))?;
    Ok(())
}

/// `project list`.
async fn list_projects(store: &Store, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let listed = projects::list(store).await?;
    if json {
        let list: Vec<serde_json::Value> = listed
            .iter()
            .map(|l| {
                let p = &l.project;
                json!({
                    "id": p.id, "name": p.name, "allowed_origins": p.allowed_origins,
                    "callback_url": p.callback_url, "email_from": p.email_from,
                    "sms_countries": countries(p),
                    "sms_per_country_per_hour": p.sms_caps.per_country_per_hour,
                    "sms_per_hour": p.sms_caps.per_hour, "sms_per_day": p.sms_caps.per_day,
                    "created_at": p.created_at,
                    "active_key_prefixes": l.active_key_prefixes,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(list))?;
    } else if listed.is_empty() {
        writeln!(
            out,
            "No projects. Create one with `futureauth-server project create --name NAME`."
        )?;
    } else {
        for ListedProject { project: p, .. } in &listed {
            writeln!(
                out,
                "{}  {}  origins: {}",
                p.id,
                p.name,
                p.allowed_origins.join(", ")
            )?;
        }
    }
    Ok(())
}

/// `operator …`.
async fn operator(
    store: &Store,
    cmd: &OperatorCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let email = |raw: &str| {
        ops::normalize_email(raw).map_err(|m| CliError::from(OperatorError::invalid("email", m)))
    };
    match cmd {
        OperatorCommand::Add { email } => {
            let op = ops::add_operator(store, email).await?;
            // Nothing is sent here: say where the code will come from once they sign in.
            writeln!(
                out,
                "Operator {} added. Start the server and sign in at /dashboard \
                 (http://127.0.0.1:8080/dashboard by default): the sign-in code is emailed \
                 through the configured provider, or, with none configured, printed in the \
                 server's terminal and listed at /dev/outbox.",
                op.email
            )?;
        }
        OperatorCommand::Token { email: raw, name } => {
            let email = email(raw)?;
            let op = ops::operator(store, &email).await?.ok_or_else(|| {
                CliError::NothingMatched(format!(
                    "{email} is not an operator; add it with `futureauth-server operator add {email}`"
                ))
            })?;
            let token = ops::create_operator_token(store, &op, name).await?;
            writeln!(out, "{token}")?;
        }
        OperatorCommand::Remove { email: raw } => {
            let email = email(raw)?;
            if !ops::remove_operator(store, &email).await? {
                return Err(CliError::NothingMatched(format!(
                    "{email} is not an operator"
                )));
            }
            writeln!(out, "Operator {email} removed.")?;
        }
        OperatorCommand::List => {
            for op in ops::operators(store).await? {
                writeln!(out, "{}  {}", op.id, op.email)?;
            }
        }
    }
    Ok(())
}

/// `key rotate`.
async fn rotate_key(
    store: &Store,
    project: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let key = projects::rotate_key(store, project)
        .await
        .map_err(no_project(project))?;
    if json {
        writeln!(out, "{}", key_json(project, &key))?;
    } else {
        writeln!(
            out,
            "New secret key for {project} (old keys revoked; shown once): {key}"
        )?;
    }
    Ok(())
}

/// `key revoke`.
async fn revoke_keys(
    store: &Store,
    key_prefix: Option<&str>,
    project: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let n = match (key_prefix, project) {
        (Some(prefix), _) => projects::revoke_keys(store, Revoke::Prefix(prefix)).await?,
        (None, Some(project)) => projects::revoke_keys(store, Revoke::Project(project)).await?,
        (None, None) => 0,
    };
    if n == 0 {
        return Err(CliError::NothingMatched("no active key matched".into()));
    }
    writeln!(out, "Revoked {n} key(s)")?;
    Ok(())
}
