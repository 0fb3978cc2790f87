//! Which protocol session serves which listener.

use crate::config::Service;
use crate::serve::ServerCtx;
use letterbox_net::{ConnInfo, MaybeTls, Shutdown};
use std::future::Future;
use std::pin::Pin;

/// A session future, boxed so listeners of different protocols share a type.
pub type SessionFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How a listener's connections are served.
pub struct Protocol {
    /// Written to connections refused for exceeding a connection cap.
    pub refuse_line: &'static [u8],
    /// Runs one session.
    pub handler: fn(ServerCtx, Service, MaybeTls, ConnInfo, Shutdown) -> SessionFuture,
}

/// The protocol for a listener kind, `None` while it is not implemented.
pub fn for_service(service: Service) -> Option<Protocol> {
    match service {
        Service::Smtp
        | Service::Submission
        | Service::Submissions
        | Service::Imap
        | Service::Imaps
        | Service::Pop3
        | Service::Pop3s
        | Service::Http => None,
    }
}
