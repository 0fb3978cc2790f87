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
        Service::Smtp | Service::Submission | Service::Submissions => Some(Protocol {
            // RFC 5321 §3.8: 421 when the service is not available.
            refuse_line: b"421 4.7.0 Too many connections, try again later\r\n",
            handler: |ctx, service, stream, info, shutdown| {
                let role = match service {
                    Service::Smtp => letterbox_smtp::Role::Mx,
                    Service::Submission => letterbox_smtp::Role::Submission,
                    _ => letterbox_smtp::Role::Submissions,
                };
                Box::pin(letterbox_smtp::session(ctx.smtp, role, stream, info, shutdown))
            },
        }),
        Service::Imap | Service::Imaps => Some(Protocol {
            // RFC 9051 §7.1.5: BYE when the server refuses a connection.
            refuse_line: b"* BYE [UNAVAILABLE] too many connections, try again later\r\n",
            handler: |ctx, _service, stream, info, shutdown| {
                Box::pin(letterbox_imap::session(ctx.imap, stream, info, shutdown))
            },
        }),
        Service::Http | Service::Https => Some(Protocol {
            // RFC 9110 §15.6.4: 503 when the server cannot take the request now.
            refuse_line:
                b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 5\r\n\r\n",
            handler: |ctx, _service, stream, info, shutdown| {
                Box::pin(letterbox_http::session(ctx.http, stream, info, shutdown))
            },
        }),
        Service::Pop3 | Service::Pop3s => Some(Protocol {
            // RFC 3206 §4: temporary, the client may retry later.
            refuse_line: b"-ERR [SYS/TEMP] too many connections\r\n",
            handler: |ctx, _service, stream, info, shutdown| {
                Box::pin(letterbox_pop3::session(ctx.pop3, stream, info, shutdown))
            },
        }),
    }
}
