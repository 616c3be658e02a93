//! A small GraphQL client over `reqwest`, and the queries the tests share.

use serde_json::{json, Value};
use tests::Server;

/// The fields of a mutation result the tests look at.
pub const RESULT: &str = "success errorCode error \
    ticket { id reference request description version status priority queue tags deleted \
             assignedTo { id roles } watchers { id } relatedTickets { id } \
             comments { comment internal author { id } } attachments { name url addedBy { id } } } \
    event { id eventType version position triggeredBy { id } previousState metadata \
            changes { field oldValue newValue } comment { comment } }";

pub struct Client {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &Server, token: Option<String>) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: server.graphql_url(),
            token,
        }
    }

    /// A client with a fresh token for `sub`.
    pub fn user(server: &Server, sub: &str, roles: &[&str], teams: &[&str]) -> Client {
        Client::new(server, Some(server.token(sub, roles, teams)))
    }

    /// The whole response body of a GraphQL request.
    pub async fn post(&self, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.expect("the server answers");
        assert!(
            response.status().is_success() || response.status().as_u16() == 401,
            "HTTP {}",
            response.status()
        );
        response.json().await.expect("a JSON body")
    }

    /// `data` of a request that must succeed without errors.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.post(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Runs `mutation name(args) { RESULT }` and returns the result object.
    pub async fn mutate(&self, field: &str, args: &str, variables: Value) -> Value {
        let query = format!("mutation {args} {{ r: {field} {{ {RESULT} }} }}");
        self.data(&query, variables).await["r"].clone()
    }
}

/// Asserts a successful mutation result and returns it.
pub fn ok(result: Value) -> Value {
    assert_eq!(result["success"], true, "{result}");
    result
}

/// Asserts a refused mutation with `code` that returned nothing.
pub fn refused(result: &Value, code: &str) {
    assert_eq!(result["success"], false, "{result}");
    assert_eq!(result["errorCode"], code, "{result}");
    assert!(
        result["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{result}"
    );
    assert!(result["event"].is_null(), "{result}");
}

/// The first `extensions.code` of a response's errors.
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Creates a ticket as `client` and returns (id, result).
pub async fn create(client: &Client, request: &str, queue: &str) -> (String, Value) {
    let result = ok(client
        .mutate(
            "createSupportTicket(input: {request: $r, queue: $q, priority: HIGH, tags: [\"Hardware\"]})",
            "($r: String!, $q: String)",
            json!({ "r": request, "q": queue }),
        )
        .await);
    (result["ticket"]["id"].as_str().unwrap().to_string(), result)
}

/// How many events the whole log holds (read as an admin).
pub async fn log_len(admin: &Client) -> usize {
    let mut count = 0;
    let mut after: Option<String> = None;
    loop {
        let data = admin
            .data(
                "query($a: String) { eventLog(after: $a, first: 1000) { events { id } nextAfter } }",
                json!({ "a": after }),
            )
            .await;
        let n = data["eventLog"]["events"].as_array().unwrap().len();
        count += n;
        if n == 0 {
            return count;
        }
        after = data["eventLog"]["nextAfter"].as_str().map(str::to_string);
    }
}

/// Sends a request as `client` so the server records their profile (needed
/// before they can be assigned a ticket).
pub async fn introduce(client: &Client) {
    client.data("{ me { id } }", json!({})).await;
}

/// The database a test's server runs on, for tests run on both.
#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    /// A server on a fresh database of this kind (PostgreSQL: a schema of
    /// its own on `TICKETS_TEST_POSTGRES_URL`).
    pub fn server(self) -> Server {
        self.server_with(&[])
    }

    /// [`Db::server`] with extra environment (settings).
    pub fn server_with(self, env: &[(&str, &str)]) -> Server {
        match self {
            Db::Sqlite => Server::start_with(env),
            Db::Postgres => {
                let schema = fresh_schema("api_test");
                let mut all = vec![("TICKETS_DATABASE_SCHEMA", schema.as_str())];
                all.extend_from_slice(env);
                Server::spawn(postgres_url(), &all, None)
            }
        }
    }
}

/// Runs the `async fn name(db: Db)` scenarios of this module on SQLite and
/// on PostgreSQL: `name::on_sqlite` and `name::on_postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn on_sqlite() {
                super::$name($crate::helpers::Db::Sqlite).await
            }
            #[tokio::test]
            async fn on_postgres() {
                super::$name($crate::helpers::Db::Postgres).await
            }
        }
    )*};
}

/// The PostgreSQL server tests use.
pub fn postgres_url() -> String {
    std::env::var("TICKETS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema name of this test process's own, starting with `prefix`.
pub fn fresh_schema(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        tests::unique() % 1_000_000
    )
}
