//! The server's configuration: flags with environment fallbacks (clap `env`).

use std::net::SocketAddr;

use clap::Args;

/// `tickets serve`: flags of the server only (`tickets serve --help`).
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Origins of web apps on other sites allowed to call this server (CORS
    /// for HTTP, and WebSocket upgrades), comma-separated, e.g.
    /// `https://helpdesk.example.com`; default: same-origin pages only.
    #[arg(
        long = "cors-origin",
        env = "TICKETS_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, env = "TICKETS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A second address for operators: `/healthz`, `/readyz` and `/metrics`
    /// there, and `/readyz` and `/metrics` (which query the database) no
    /// longer on `--listen`. Default: all of them on `--listen`.
    #[arg(long, env = "TICKETS_OPS_LISTEN")]
    pub ops_listen: Option<SocketAddr>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "TICKETS_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Longest a GraphQL query or mutation over HTTP may run (`30s`, `2m`; a
    /// bare number is seconds); then it is stopped and answered `TIMEOUT`.
    #[arg(
        long,
        env = "TICKETS_REQUEST_TIMEOUT",
        default_value = "30s",
        value_parser = parse_timeout
    )]
    pub request_timeout: std::time::Duration,
    /// Deepest accepted query (selection nesting).
    #[arg(long, env = "TICKETS_MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,
    /// Largest accepted query cost: each field counts 1, a page's selection
    /// once per item (`first`), `relatedTickets` 20 times (`graphql::cost`).
    #[arg(long, env = "TICKETS_MAX_QUERY_COMPLEXITY", default_value_t = 10_000)]
    pub max_query_complexity: usize,
    /// Live ticket events buffered per subscriber; one that falls further
    /// behind gets a `LAGGED` error with the position to resume from.
    #[arg(
        long,
        env = "TICKETS_SUBSCRIBER_BUFFER",
        default_value_t = 256,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    pub subscriber_buffer: u64,
    #[command(flatten)]
    pub sla: SlaSettings,
    #[command(flatten)]
    pub limits: LimitSettings,
    #[command(flatten)]
    pub rates: RateSettings,
    #[command(flatten)]
    pub presence: PresenceSettings,
    /// Queue of a ticket created without one.
    #[arg(long, env = "TICKETS_DEFAULT_QUEUE", default_value = "support")]
    pub default_queue: String,
    /// `/readyz` answers 503 while any projection is more than this many
    /// positions (events, on the SQL stores) behind the head of the log.
    #[arg(long, env = "TICKETS_READY_MAX_LAG", default_value_t = 1000)]
    pub ready_max_lag: u64,
    /// How often the SLA process looks for targets coming due or missed,
    /// in milliseconds: a warning or breach is appended at most this late.
    #[arg(
        long,
        env = "TICKETS_SLA_CHECK_INTERVAL_MS",
        default_value_t = 15_000,
        value_parser = clap::value_parser!(u64).range(10..)
    )]
    pub sla_check_interval_ms: u64,
    /// How long a query of the read models waits for them to reach the head
    /// of the log as it stood when the query began (so a write made through
    /// any node is seen), in milliseconds; then it answers as they stand.
    #[arg(long, env = "TICKETS_READ_YOUR_WRITES_MS", default_value_t = 2000)]
    pub read_your_writes_ms: u64,
    /// How long a new WebSocket may take to send `connection_init`, in
    /// milliseconds (then it is closed with 4408).
    #[arg(long, env = "TICKETS_WS_INIT_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_init_timeout_ms: u64,
    /// Operations (subscriptions, queries, mutations) one WebSocket may run at
    /// once; one more is answered with an `error` for its id.
    #[arg(
        long,
        env = "TICKETS_WS_MAX_SUBSCRIPTIONS",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub ws_max_subscriptions: u32,
    /// WebSockets one user may hold open at once; the next one's
    /// `connection_init` is refused (close 4403).
    #[arg(
        long,
        env = "TICKETS_WS_MAX_SOCKETS_PER_USER",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub ws_max_sockets_per_user: u32,
    /// How often an acknowledged WebSocket hears from the server when nothing
    /// else is said (`ping` on graphql-transport-ws, `ka` on graphql-ws), in
    /// milliseconds; 0 turns it off.
    #[arg(long, env = "TICKETS_WS_KEEPALIVE_MS", default_value_t = 15_000)]
    pub ws_keepalive_ms: u64,
    /// Subscriptions with `after` whose replay reads the store (events no
    /// longer in the fan-out's memory) that may run at once in this process;
    /// one more is refused with `RATE_LIMITED` and `retryAfterSeconds`.
    #[arg(
        long,
        env = "TICKETS_MAX_REPLAYS",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_replays: u32,
    /// Such replays one user may run at once (over all their sockets).
    #[arg(
        long,
        env = "TICKETS_MAX_REPLAYS_PER_USER",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_replays_per_user: u32,
    /// How far behind the head (positions: events, on the SQL stores) a
    /// replay of the whole log (`supportTicketEvents`, `myTicketUpdates`,
    /// `teamTicketUpdates`) may start; further back is refused with
    /// `REPLAY_TOO_OLD`. `ticketUpdated` replays its ticket's stream, whatever
    /// the distance.
    #[arg(long, env = "TICKETS_MAX_REPLAY_EVENTS", default_value_t = 100_000)]
    pub max_replay_events: u64,
}

/// Rate limits (see `crate::rate_limits`); 0 turns one off.
#[derive(Debug, Clone, Args)]
pub struct RateSettings {
    /// Mutations one user may make per minute (a tenth of them at once).
    #[arg(long, env = "TICKETS_RATE_MUTATIONS_PER_MINUTE", default_value_t = 600)]
    pub rate_mutations_per_minute: u32,
    /// Operations (subscriptions, queries, mutations) one user may start per
    /// minute over WebSockets.
    #[arg(
        long,
        env = "TICKETS_RATE_OPERATIONS_PER_MINUTE",
        default_value_t = 600
    )]
    pub rate_operations_per_minute: u32,
    /// Requests without a valid token, and WebSocket upgrades, one client
    /// address may make per minute.
    #[arg(long, env = "TICKETS_RATE_ANONYMOUS_PER_MINUTE", default_value_t = 600)]
    pub rate_anonymous_per_minute: u32,
}

/// Presence (`setTicketPresence`, see `crate::presence`): how long an entry
/// lives without a refresh, and how many there may be.
#[derive(Debug, Clone, Args)]
pub struct PresenceSettings {
    /// How long a presence entry lives after its last `setTicketPresence`,
    /// in milliseconds (an entry set over a WebSocket also ends when that
    /// socket closes).
    #[arg(
        long,
        env = "TICKETS_PRESENCE_TTL_MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(100..=3_600_000)
    )]
    pub presence_ttl_ms: u64,
    /// Users that may be present on one ticket at once; one more is refused
    /// with `TOO_MANY_PRESENT`.
    #[arg(
        long,
        env = "TICKETS_PRESENCE_MAX_PER_TICKET",
        default_value_t = 50,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub presence_max_per_ticket: u32,
    /// Tickets one user may be present on at once; one more is refused with
    /// `TOO_MANY_PRESENT`.
    #[arg(
        long,
        env = "TICKETS_PRESENCE_MAX_PER_USER",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub presence_max_per_user: u32,
}

/// What one ticket may hold, for `tickets serve` and `tickets ticket` (so
/// both refuse the same commands). A command past a cap is `INVALID`,
/// naming it.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Comments one ticket may hold.
    #[arg(long, env = "TICKETS_MAX_COMMENTS_PER_TICKET", default_value_t = domain::TicketLimits::default().comments)]
    pub max_comments_per_ticket: usize,
    /// Attachments one ticket may hold.
    #[arg(long, env = "TICKETS_MAX_ATTACHMENTS_PER_TICKET", default_value_t = domain::TicketLimits::default().attachments)]
    pub max_attachments_per_ticket: usize,
    /// Watchers one ticket may have.
    #[arg(long, env = "TICKETS_MAX_WATCHERS_PER_TICKET", default_value_t = domain::TicketLimits::default().watchers)]
    pub max_watchers_per_ticket: usize,
    /// Tickets one ticket may be related to.
    #[arg(long, env = "TICKETS_MAX_RELATED_PER_TICKET", default_value_t = domain::TicketLimits::default().relations)]
    pub max_related_per_ticket: usize,
    /// Tags one ticket may carry.
    #[arg(long, env = "TICKETS_MAX_TAGS_PER_TICKET", default_value_t = domain::TicketLimits::default().tags)]
    pub max_tags_per_ticket: usize,
}

impl LimitSettings {
    pub fn ticket_limits(&self) -> domain::TicketLimits {
        domain::TicketLimits {
            comments: self.max_comments_per_ticket,
            attachments: self.max_attachments_per_ticket,
            watchers: self.max_watchers_per_ticket,
            relations: self.max_related_per_ticket,
            tags: self.max_tags_per_ticket,
        }
    }
}

/// The SLA targets, for `tickets serve` and for `tickets projections` (a
/// rebuilt `queue_metrics` counts breaches against the server's targets).
#[derive(Debug, Clone, Args)]
pub struct SlaSettings {
    /// SLA targets per priority, `PRIORITY=FIRST_RESPONSE/RESOLUTION[/WARNING_BEFORE]`,
    /// comma-separated (e.g. `CRITICAL=1h/4h,HIGH=4h/1d`); priorities not named
    /// keep the defaults (CRITICAL 1h/4h, HIGH 4h/1d, MEDIUM 8h/3d, LOW 1d/5d).
    #[arg(long, env = "TICKETS_SLA_TARGETS", default_value = "")]
    pub sla_targets: domain::sla::SlaTargetOverrides,
    /// For priorities without their own warning time: warn when this
    /// percentage of the first-response target remains (0: no warnings).
    #[arg(
        long,
        env = "TICKETS_SLA_WARNING_PERCENT",
        default_value_t = domain::sla::DEFAULT_WARNING_PERCENT,
        value_parser = clap::value_parser!(u8).range(0..=100)
    )]
    pub sla_warning_percent: u8,
}

impl SlaSettings {
    /// The SLA policy both the SLA process and the queue figures follow.
    pub fn policy(&self) -> Result<domain::SlaPolicy, domain::sla::SlaConfigError> {
        domain::SlaPolicy::configured(&self.sla_targets, self.sla_warning_percent)
    }
}

impl ServeSettings {
    /// The SLA policy both the SLA process and the queue figures follow.
    pub fn sla_policy(&self) -> Result<domain::SlaPolicy, domain::sla::SlaConfigError> {
        self.sla.policy()
    }
}

/// A timeout such as `30s` or `2m`; at least one second.
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let timeout = crate::auth::parse_ttl(s)?;
    if timeout.is_zero() {
        return Err("the timeout must be at least 1s".into());
    }
    Ok(timeout)
}

/// `1`, `true`, `yes`, `on` (any case) are true; `0`, `false`, `no`, `off`, `` false.
pub fn parse_flag(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("'{s}' is not a boolean (use 1/0 or true/false)")),
    }
}

/// Shortest secret accepted where it matters (off loopback, or in production
/// mode): 32 bytes, HS256's own key size.
pub const MIN_SECRET_BYTES: usize = 32;

/// The JWT secret as configured, and whether the server may start with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Configured(String),
    /// Development mode: the well-known [`crate::auth::DEV_SECRET`].
    Development,
}

/// Where a secret is to be used: the address a server listens on, or none
/// for the command line (`tickets token`), which serves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    Serve(SocketAddr),
    Mint,
}

impl Secret {
    /// auth.md, "Next round": development mode (no secret, tokens signed with
    /// a public one) exists only on a loopback address and outside production
    /// mode; anywhere else the secret is required and must be at least
    /// [`MIN_SECRET_BYTES`] long. The error says what to set.
    pub fn choose(
        configured: Option<&str>,
        production: bool,
        usage: SecretUse,
    ) -> Result<Secret, String> {
        let exposed = match usage {
            SecretUse::Serve(address) => (!address.ip().is_loopback()).then_some(address),
            SecretUse::Mint => None,
        };
        let strict = production || exposed.is_some();
        let why = match exposed {
            Some(address) => {
                format!("listening on {address}, which is not a loopback address, needs")
            }
            None => "production mode needs".to_string(),
        };
        match configured.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) if strict && s.len() < MIN_SECRET_BYTES => Err(format!(
                "{why} a TICKETS_JWT_SECRET (or --jwt-secret) of at least \
                 {MIN_SECRET_BYTES} bytes; this one has {}. Refusing to start",
                s.len()
            )),
            Some(s) => Ok(Secret::Configured(s.to_string())),
            None if strict => Err(format!(
                "{why} TICKETS_JWT_SECRET (or --jwt-secret), at least {MIN_SECRET_BYTES} \
                 bytes (e.g. `openssl rand -base64 48`); development mode, with its \
                 public secret, is only for loopback addresses. Refusing to start"
            )),
            None => Ok(Secret::Development),
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Secret::Configured(s) => s,
            Secret::Development => crate::auth::DEV_SECRET,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: SecretUse = SecretUse::Serve(SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        8080,
    )));

    fn exposed(address: &str) -> SecretUse {
        SecretUse::Serve(address.parse().unwrap())
    }

    /// Production mode never falls back to the public development secret,
    /// and takes no secret shorter than 32 bytes.
    #[test]
    fn production_mode_refuses_a_missing_or_short_secret() {
        let long = "0123456789abcdef0123456789abcdef";
        assert!(Secret::choose(None, true, LOOPBACK).is_err());
        assert!(Secret::choose(Some("  "), true, LOOPBACK).is_err());
        assert!(Secret::choose(Some("x"), true, LOOPBACK).is_err());
        assert_eq!(
            Secret::choose(Some(long), true, LOOPBACK),
            Ok(Secret::Configured(long.into()))
        );
    }

    /// Development mode exists only on loopback: any other address (all
    /// interfaces included) needs a secret of at least 32 bytes, and the error
    /// names the address.
    #[test]
    fn off_loopback_a_server_needs_a_long_secret() {
        let long = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            Secret::choose(None, false, LOOPBACK),
            Ok(Secret::Development)
        );
        assert_eq!(
            Secret::choose(None, false, exposed("[::1]:8080")),
            Ok(Secret::Development)
        );
        assert_eq!(
            Secret::choose(Some("short"), false, LOOPBACK),
            Ok(Secret::Configured("short".into()))
        );
        for address in ["0.0.0.0:8080", "[::]:8080", "192.0.2.7:80"] {
            let missing = Secret::choose(None, false, exposed(address)).unwrap_err();
            assert!(
                missing.contains(address) && missing.contains("TICKETS_JWT_SECRET"),
                "{missing}"
            );
            let short = Secret::choose(Some("short"), false, exposed(address)).unwrap_err();
            assert!(short.contains("32 bytes"), "{short}");
            assert_eq!(
                Secret::choose(Some(long), false, exposed(address)),
                Ok(Secret::Configured(long.into()))
            );
        }
        assert_eq!(
            Secret::choose(None, false, SecretUse::Mint),
            Ok(Secret::Development)
        );
    }

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        settings: ServeSettings,
    }

    fn serve(args: &[&str]) -> Result<ServeSettings, clap::Error> {
        use clap::Parser;
        Serve::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .map(|s| s.settings)
    }

    /// SLA targets and warning percentage are read from flags; without them
    /// the policy is the default, and a mistake stops start-up with its reason.
    #[test]
    fn sla_settings_configure_the_policy_or_refuse_to_start() {
        let default = serve(&[]).unwrap();
        assert_eq!(default.sla_policy().unwrap(), domain::SlaPolicy::default());
        let tight = serve(&[
            "--sla-targets",
            "CRITICAL=10m/1h",
            "--sla-warning-percent",
            "50",
        ])
        .unwrap()
        .sla_policy()
        .unwrap();
        assert_eq!(tight.critical.first_response, chrono::Duration::minutes(10));
        assert_eq!(tight.critical.warning_before, chrono::Duration::minutes(5));
        let typo = serve(&["--sla-targets", "CRITCAL=10m/1h"])
            .unwrap_err()
            .to_string();
        assert!(typo.contains("CRITCAL"), "{typo}");
        assert!(serve(&["--sla-warning-percent", "120"]).is_err());
        assert!(serve(&["--subscriber-buffer", "0"]).is_err());
        assert_eq!(
            serve(&["--subscriber-buffer", "4"])
                .unwrap()
                .subscriber_buffer,
            4
        );
    }

    /// Environment booleans read the way people write them.
    #[test]
    fn flags_parse_common_spellings() {
        assert_eq!(parse_flag("1"), Ok(true));
        assert_eq!(parse_flag("TRUE"), Ok(true));
        assert_eq!(parse_flag("0"), Ok(false));
        assert!(parse_flag("maybe").is_err());
    }
}
