//! The GraphQL server, driven as a client would: a real `tickets serve` on a
//! free port, HTTP for queries and mutations, a WebSocket for subscriptions.

mod audit;
mod auth;
mod browser;
mod bulk;
mod cluster;
mod esdb;
mod fanout;
mod fuzz;
mod helpers;
mod hostile;
mod logging;
mod mutations;
mod notification_centre;
mod origins;
mod postgres;
mod presence;
mod protection;
mod rate_limits;
mod read_models;
mod readiness;
mod replays;
mod sla_settings;
mod sse;
mod subscriptions;
mod visibility;
mod web;
mod ws_protocol;
