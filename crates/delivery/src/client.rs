//! The outbound SMTP client (RFC 5321 §3, §4): one connection to one host,
//! EHLO, opportunistic or required STARTTLS (RFC 3207), AUTH PLAIN for a
//! smarthost (RFC 4954), and transactions with PIPELINING (RFC 2920),
//! SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN
//! parameters (RFC 3461) and BDAT (RFC 3030).
//!
//! A connection can carry several transactions (`RSET` between them), which
//! is how the worker reuses connections to one host.

use base64::Engine as _;
use letterbox_net::{LineError, LineReader};
use letterbox_smtp_proto::client::{dot_stuff, xtext, MAX_REPLY_LINE};
use letterbox_smtp_proto::{Capabilities, ReplyAssembler, ServerReply};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Byte stream of a client connection, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Timeouts of RFC 5321 §4.5.3.2, collapsed to two.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect and TLS handshake.
    pub connect: Duration,
    /// Waiting for any reply but the one after the message data.
    pub command: Duration,
    /// Waiting for the reply after the message data (§4.5.3.2.6: 10 minutes).
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            command: Duration::from_secs(300),
            data_end: Duration::from_secs(600),
        }
    }
}

/// Where a session failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Connection refused, reset, closed, or TLS failure.
    #[error("{0}")]
    Network(String),
    /// No reply in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server gave an unexpected reply at a session-level step.
    #[error("{stage}: {reply}")]
    Rejected { stage: &'static str, reply: ServerReply },
    /// The server broke the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Whether a later attempt could succeed (anything but a 5xx reply).
    pub fn is_transient(&self) -> bool {
        !matches!(self, ClientError::Rejected { reply, .. } if reply.is_permanent())
    }
}

/// One recipient of a transaction with its DSN parameters.
#[derive(Debug, Clone)]
pub struct RcptSpec {
    /// Address without angle brackets.
    pub address: String,
    /// RFC 3461 NOTIFY value, passed on when the server supports DSN.
    pub notify: Option<String>,
    /// RFC 3461 ORCPT value (`type;xtext`), passed on likewise.
    pub orcpt: Option<String>,
}

/// Envelope of one transaction.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// Reverse-path; empty for the null sender.
    pub sender: &'a str,
    pub recipients: &'a [RcptSpec],
    pub envid: Option<&'a str>,
    pub ret: Option<&'a str>,
    /// The message has 8-bit bytes in its body.
    pub eight_bit: bool,
    /// The envelope or the header holds UTF-8 (RFC 6531).
    pub needs_smtputf8: bool,
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    /// Accepted: the final reply to the message.
    Delivered(ServerReply),
    /// Refused, at RCPT or at the end of data.
    Refused(ServerReply),
}

/// An open SMTP session.
pub struct Client {
    io: LineReader<Box<dyn Io>>,
    /// The capabilities from the last EHLO.
    pub caps: Capabilities,
    /// Host name the connection was made for (for logs and DSNs).
    pub host: String,
    /// Whether the session is encrypted.
    pub tls: bool,
    timeouts: Timeouts,
    assembler: ReplyAssembler,
}

impl Client {
    /// Connect and read the greeting (RFC 5321 §3.1). With `implicit_tls`,
    /// TLS starts before the greeting (RFC 8314 §3).
    pub async fn connect(
        addr: SocketAddr,
        host: &str,
        timeouts: Timeouts,
        implicit_tls: Option<&Tls>,
    ) -> Result<Client, ClientError> {
        let tcp = match tokio::time::timeout(timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ClientError::Network(format!("cannot connect to {host} [{addr}]: {e}"))),
            Err(_) => return Err(ClientError::Timeout("the connection")),
        };
        let _ = tcp.set_nodelay(true);
        let mut stream: Box<dyn Io> = Box::new(tcp);
        let mut tls = false;
        if let Some(t) = implicit_tls {
            stream = t.handshake(stream, host, timeouts.connect).await?;
            tls = true;
        }
        let mut client = Client {
            io: LineReader::new(stream),
            caps: Capabilities::default(),
            host: host.to_string(),
            tls,
            timeouts,
            assembler: ReplyAssembler::default(),
        };
        let greeting = client.reply("the greeting").await?;
        if greeting.code != 220 {
            return Err(ClientError::Rejected {
                stage: "greeting",
                reply: greeting,
            });
        }
        Ok(client)
    }

    /// EHLO, falling back to HELO when EHLO is refused (RFC 5321 §4.1.4).
    pub async fn ehlo(&mut self, name: &str) -> Result<(), ClientError> {
        let reply = self.command(&format!("EHLO {name}"), "EHLO").await?;
        if reply.is_positive() {
            self.caps = Capabilities::parse(&reply);
            return Ok(());
        }
        if reply.code == 421 {
            return Err(ClientError::Rejected { stage: "EHLO", reply });
        }
        let reply = self.command(&format!("HELO {name}"), "HELO").await?;
        if !reply.is_positive() {
            return Err(ClientError::Rejected { stage: "HELO", reply });
        }
        self.caps = Capabilities::default();
        Ok(())
    }

    /// STARTTLS (RFC 3207 §4) then EHLO again, as §4.2 requires.
    pub async fn starttls(self, tls: &Tls, ehlo_name: &str) -> Result<Client, ClientError> {
        let mut me = self;
        let reply = me.command("STARTTLS", "STARTTLS").await?;
        if reply.code != 220 {
            return Err(ClientError::Rejected {
                stage: "STARTTLS",
                reply,
            });
        }
        if me.io.buffered() > 0 {
            // Anything before the handshake would be unauthenticated injection.
            return Err(ClientError::Protocol("data pipelined after the STARTTLS reply".into()));
        }
        let Client { io, host, timeouts, .. } = me;
        let stream = tls.handshake(io.into_inner(), &host, timeouts.connect).await?;
        let mut client = Client {
            io: LineReader::new(stream),
            caps: Capabilities::default(),
            host,
            tls: true,
            timeouts,
            assembler: ReplyAssembler::default(),
        };
        client.ehlo(ehlo_name).await?;
        Ok(client)
    }

    /// AUTH PLAIN with an initial response (RFC 4954 §4, RFC 4616).
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> Result<(), ClientError> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        let reply = self.command(&format!("AUTH PLAIN {token}"), "AUTH").await?;
        if reply.code != 235 {
            return Err(ClientError::Rejected { stage: "AUTH", reply });
        }
        Ok(())
    }

    /// Run one mail transaction. `Err` means the session failed and no
    /// recipient's fate is known; `Ok` gives every recipient's result.
    pub async fn send(&mut self, env: &Envelope<'_>, message: &[u8]) -> Result<Vec<RcptResult>, ClientError> {
        if let Some(refusal) = self.refuse_locally(env, message.len()) {
            return Ok(env
                .recipients
                .iter()
                .map(|_| RcptResult::Refused(refusal.clone()))
                .collect());
        }
        let mut mail = format!("MAIL FROM:<{}>", env.sender);
        if self.caps.size.is_some() {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        if env.eight_bit && self.caps.eight_bit_mime {
            mail.push_str(" BODY=8BITMIME");
        }
        if env.needs_smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        if self.caps.dsn {
            if let Some(ret) = env.ret {
                mail.push_str(&format!(" RET={ret}"));
            }
            if let Some(envid) = env.envid {
                mail.push_str(&format!(" ENVID={}", xtext(envid)));
            }
        }
        let rcpt_lines: Vec<String> = env
            .recipients
            .iter()
            .map(|r| {
                let mut line = format!("RCPT TO:<{}>", r.address);
                if self.caps.dsn {
                    if let Some(n) = &r.notify {
                        line.push_str(&format!(" NOTIFY={n}"));
                    }
                    if let Some(o) = &r.orcpt {
                        line.push_str(&format!(" ORCPT={o}"));
                    }
                }
                line
            })
            .collect();

        // MAIL and every RCPT in one write when allowed; DATA waits for the
        // replies so a server that wrongly answers 354 with no valid
        // recipient never sees our message.
        let mut replies = Vec::with_capacity(rcpt_lines.len() + 1);
        if self.caps.pipelining {
            let mut batch = format!("{mail}\r\n");
            for l in &rcpt_lines {
                batch.push_str(l);
                batch.push_str("\r\n");
            }
            self.write(batch.as_bytes()).await?;
            for _ in 0..=rcpt_lines.len() {
                replies.push(self.reply("a MAIL/RCPT reply").await?);
            }
        } else {
            replies.push(self.command(&mail, "MAIL").await?);
            if replies[0].is_positive() {
                for l in &rcpt_lines {
                    let r = self.command(l, "RCPT").await?;
                    replies.push(r);
                }
            }
        }
        let mail_reply = replies.remove(0);
        if !mail_reply.is_positive() {
            self.rset_quietly().await;
            return Err(ClientError::Rejected {
                stage: "MAIL FROM",
                reply: mail_reply,
            });
        }
        let mut results: Vec<Option<RcptResult>> = replies
            .into_iter()
            .map(|r| (!r.is_positive()).then_some(RcptResult::Refused(r)))
            .collect();
        if results.iter().all(Option::is_some) {
            self.rset_quietly().await;
            return Ok(results.into_iter().flatten().collect());
        }

        let final_reply = if self.caps.chunking {
            let mut buf = format!("BDAT {} LAST\r\n", message.len()).into_bytes();
            buf.extend_from_slice(message);
            self.write(&buf).await?;
            self.reply_within(self.timeouts.data_end, "the reply to BDAT LAST")
                .await?
        } else {
            let reply = self.command("DATA", "DATA").await?;
            if reply.code != 354 {
                reply
            } else {
                self.write(&dot_stuff(message)).await?;
                self.reply_within(self.timeouts.data_end, "the reply to the message data")
                    .await?
            }
        };
        for r in results.iter_mut().filter(|r| r.is_none()) {
            *r = Some(if final_reply.is_positive() {
                RcptResult::Delivered(final_reply.clone())
            } else {
                RcptResult::Refused(final_reply.clone())
            });
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Refusals we can tell before sending anything: a message the server
    /// declared too big (RFC 1870 §6) or one needing SMTPUTF8 it lacks
    /// (RFC 6531 §3.2, no downgrade is attempted).
    fn refuse_locally(&self, env: &Envelope<'_>, size: usize) -> Option<ServerReply> {
        let reply = |code, text: String| ServerReply {
            code,
            lines: vec![text],
        };
        if let Some(max) = self.caps.size.filter(|m| *m > 0 && size as u64 > *m) {
            return Some(reply(
                552,
                format!(
                    "5.3.4 message of {size} bytes exceeds the {max} bytes {} accepts",
                    self.host
                ),
            ));
        }
        if env.needs_smtputf8 && !self.caps.smtputf8 {
            return Some(reply(
                553,
                format!(
                    "5.6.7 {} does not support SMTPUTF8, which this message needs",
                    self.host
                ),
            ));
        }
        None
    }

    /// RSET before reusing the connection for another transaction.
    pub async fn rset(&mut self) -> Result<(), ClientError> {
        let reply = self.command("RSET", "RSET").await?;
        if !reply.is_positive() {
            return Err(ClientError::Rejected { stage: "RSET", reply });
        }
        Ok(())
    }

    async fn rset_quietly(&mut self) {
        let _ = self.rset().await;
    }

    /// Say QUIT and close, without waiting long.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = self.write(b"QUIT\r\n").await;
            let _ = self.read_reply().await;
        })
        .await;
    }

    async fn command(&mut self, line: &str, what: &'static str) -> Result<ServerReply, ClientError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.reply(what).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let io = self.io.get_mut();
        let fut = async {
            io.write_all(bytes).await?;
            io.flush().await
        };
        match tokio::time::timeout(self.timeouts.command, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ClientError::Network(format!("write to {} failed: {e}", self.host))),
            Err(_) => Err(ClientError::Timeout("a write to complete")),
        }
    }

    async fn reply(&mut self, what: &'static str) -> Result<ServerReply, ClientError> {
        self.reply_within(self.timeouts.command, what).await
    }

    async fn reply_within(&mut self, limit: Duration, what: &'static str) -> Result<ServerReply, ClientError> {
        match tokio::time::timeout(limit, self.read_reply()).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout(what)),
        }
    }

    async fn read_reply(&mut self) -> Result<ServerReply, ClientError> {
        loop {
            let line = match self.io.read_line(MAX_REPLY_LINE).await {
                Ok(l) => l,
                Err(LineError::Eof) => {
                    return Err(ClientError::Network(format!("{} closed the connection", self.host)))
                }
                Err(e) => {
                    return Err(ClientError::Protocol(format!(
                        "{} sent a bad reply line: {e}",
                        self.host
                    )))
                }
            };
            let text = String::from_utf8_lossy(line.as_bytes());
            match self.assembler.push(&text) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => return Err(ClientError::Protocol(format!("{}: {e}", self.host))),
            }
        }
    }
}

/// A TLS client setup: the rustls config plus whether a failed handshake
/// may fall back to plaintext.
#[derive(Clone)]
pub struct Tls {
    pub connector: tokio_rustls::TlsConnector,
}

impl Tls {
    /// Wrap a rustls client config.
    pub fn new(config: Arc<tokio_rustls::rustls::ClientConfig>) -> Tls {
        Tls {
            connector: tokio_rustls::TlsConnector::from(config),
        }
    }

    async fn handshake(&self, stream: Box<dyn Io>, host: &str, limit: Duration) -> Result<Box<dyn Io>, ClientError> {
        let name = rustls_pki_types::ServerName::try_from(host.trim_end_matches('.').to_string())
            .map_err(|e| ClientError::Network(format!("bad TLS server name {host:?}: {e}")))?;
        match tokio::time::timeout(limit, self.connector.connect(name, stream)).await {
            Ok(Ok(s)) => Ok(Box::new(s)),
            Ok(Err(e)) => Err(ClientError::Network(format!("TLS handshake with {host} failed: {e}"))),
            Err(_) => Err(ClientError::Timeout("the TLS handshake")),
        }
    }
}
