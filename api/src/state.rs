//! [`AppState`]: what every route and every WebSocket session is handed.

use std::sync::Arc;

use crate::context::ApiContext;
use crate::graphql::TicketsSchema;
use crate::sockets::Sockets;

#[derive(Clone)]
pub struct AppState {
    pub ctx: ApiContext,
    pub schema: TicketsSchema,
    /// The WebSockets of this server (per-user counts, shutdown wait).
    pub sockets: Arc<Sockets>,
}
