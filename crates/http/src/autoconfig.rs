//! Mail client autoconfiguration: Thunderbird's `config-v1.1.xml`
//! (served at `/.well-known/autoconfig/mail/` and on the `autoconfig.`
//! host at `/mail/`) and Outlook's POX Autodiscover. There is no RFC for
//! either; the formats follow what Thunderbird and Outlook read
//! (Mozilla's "Autoconfiguration" wiki; Microsoft's [MS-OXDSCLI]).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where the account's protocols are reached (absent = not offered).
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    pub hostname: String,
    pub imaps: Option<u16>,
    pub imap: Option<u16>,
    pub pop3s: Option<u16>,
    pub pop3: Option<u16>,
    pub submissions: Option<u16>,
    pub submission: Option<u16>,
}

/// XML text with the five predefined entities escaped.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

/// A plausible address from a query, or none (never echoed unchecked).
pub fn checked_address(a: &str) -> Option<&str> {
    let ok = a.len() <= 254
        && a.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"'&".contains(c));
    ok.then_some(a)
}

struct Xml(String);

impl Xml {
    fn open(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.0.push('<');
        self.0.push_str(tag);
        for (k, v) in attrs {
            self.0.push_str(&format!(" {k}=\"{}\"", esc(v)));
        }
        self.0.push('>');
    }
    fn close(&mut self, tag: &str) {
        self.0.push_str(&format!("</{tag}>"));
    }
    fn leaf(&mut self, tag: &str, text: &str) {
        self.open(tag, &[]);
        self.0.push_str(&esc(text));
        self.close(tag);
    }
}

/// Thunderbird's config-v1.1.xml.
pub fn thunderbird(s: &ClientSettings, domain: &str) -> String {
    let mut x = Xml(String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    x.open("clientConfig", &[("version", "1.1")]);
    x.open("emailProvider", &[("id", domain)]);
    x.leaf("domain", domain);
    x.leaf("displayName", &format!("Mail at {domain}"));
    x.leaf("displayShortName", domain);
    let server = |x: &mut Xml, dir: &str, kind: &str, port: Option<u16>, socket: &str| {
        let Some(port) = port else { return };
        x.open(dir, &[("type", kind)]);
        x.leaf("hostname", &s.hostname);
        x.leaf("port", &port.to_string());
        x.leaf("socketType", socket);
        x.leaf("username", "%EMAILADDRESS%");
        x.leaf("authentication", "password-cleartext");
        x.close(dir);
    };
    server(&mut x, "incomingServer", "imap", s.imaps, "SSL");
    server(&mut x, "incomingServer", "imap", s.imap, "STARTTLS");
    server(&mut x, "incomingServer", "pop3", s.pop3s, "SSL");
    server(&mut x, "incomingServer", "pop3", s.pop3, "STARTTLS");
    server(&mut x, "outgoingServer", "smtp", s.submissions, "SSL");
    server(&mut x, "outgoingServer", "smtp", s.submission, "STARTTLS");
    x.close("emailProvider");
    x.close("clientConfig");
    x.0.push('\n');
    x.0
}

/// Outlook's POX Autodiscover response ([MS-OXDSCLI] §2.2.4).
pub fn autodiscover(s: &ClientSettings, address: &str) -> String {
    let mut x = Xml(String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"));
    x.open(
        "Autodiscover",
        &[(
            "xmlns",
            "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
        )],
    );
    x.open(
        "Response",
        &[(
            "xmlns",
            "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
        )],
    );
    x.open("Account", &[]);
    x.leaf("AccountType", "email");
    x.leaf("Action", "settings");
    let proto = |x: &mut Xml, kind: &str, port: Option<u16>| {
        let Some(port) = port else { return };
        x.open("Protocol", &[]);
        x.leaf("Type", kind);
        x.leaf("Server", &s.hostname);
        x.leaf("Port", &port.to_string());
        x.leaf("LoginName", address);
        x.leaf("SPA", "off");
        x.leaf("SSL", "on");
        x.leaf("AuthRequired", "on");
        x.close("Protocol");
    };
    proto(&mut x, "IMAP", s.imaps);
    proto(&mut x, "POP3", s.pop3s);
    proto(&mut x, "SMTP", s.submissions);
    x.close("Account");
    x.close("Response");
    x.close("Autodiscover");
    x.0.push('\n');
    x.0
}

/// A UUID-shaped id derived from `seed`, so the same address always gets
/// the same profile (iOS then replaces it instead of adding another).
fn stable_uuid(seed: &str) -> String {
    let h = letterbox_directory::secret_digest(seed);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// An Apple configuration profile (an XML property list, Apple's
/// "Configuration Profile Reference", `com.apple.mail.managed` payload)
/// that sets up Mail on iOS and macOS for `address`: IMAP and submission
/// over implicit TLS, password asked for at install time.
pub fn mobileconfig(s: &ClientSettings, address: &str) -> Option<String> {
    let imap = s.imaps?;
    let smtp = s.submissions?;
    let reverse: String = s.hostname.split('.').rev().collect::<Vec<_>>().join(".");
    let mut x = Xml(String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n",
    ));
    let string = |x: &mut Xml, k: &str, v: &str| {
        x.leaf("key", k);
        x.leaf("string", v);
    };
    let int = |x: &mut Xml, k: &str, v: u16| {
        x.leaf("key", k);
        x.leaf("integer", &v.to_string());
    };
    let yes = |x: &mut Xml, k: &str| {
        x.leaf("key", k);
        x.0.push_str("<true/>");
    };
    x.open("plist", &[("version", "1.0")]);
    x.open("dict", &[]);
    x.leaf("key", "PayloadContent");
    x.open("array", &[]);
    x.open("dict", &[]);
    string(&mut x, "EmailAccountDescription", address);
    string(&mut x, "EmailAccountType", "EmailTypeIMAP");
    string(&mut x, "EmailAddress", address);
    string(&mut x, "IncomingMailServerAuthentication", "EmailAuthPassword");
    string(&mut x, "IncomingMailServerHostName", &s.hostname);
    int(&mut x, "IncomingMailServerPortNumber", imap);
    yes(&mut x, "IncomingMailServerUseSSL");
    string(&mut x, "IncomingMailServerUsername", address);
    string(&mut x, "OutgoingMailServerAuthentication", "EmailAuthPassword");
    string(&mut x, "OutgoingMailServerHostName", &s.hostname);
    int(&mut x, "OutgoingMailServerPortNumber", smtp);
    yes(&mut x, "OutgoingMailServerUseSSL");
    string(&mut x, "OutgoingMailServerUsername", address);
    yes(&mut x, "OutgoingPasswordSameAsIncomingPassword");
    string(&mut x, "PayloadDisplayName", address);
    string(
        &mut x,
        "PayloadIdentifier",
        &format!("{reverse}.letterbox.mail.{}", stable_uuid(address)),
    );
    string(&mut x, "PayloadType", "com.apple.mail.managed");
    string(&mut x, "PayloadUUID", &stable_uuid(&format!("mail:{address}")));
    int(&mut x, "PayloadVersion", 1);
    x.close("dict");
    x.close("array");
    string(&mut x, "PayloadDisplayName", &format!("Mail for {address}"));
    string(
        &mut x,
        "PayloadIdentifier",
        &format!("{reverse}.letterbox.{}", stable_uuid(address)),
    );
    string(&mut x, "PayloadType", "Configuration");
    string(&mut x, "PayloadUUID", &stable_uuid(&format!("profile:{address}")));
    int(&mut x, "PayloadVersion", 1);
    x.close("dict");
    x.close("plist");
    x.0.push('\n');
    Some(x.0)
}

pub fn xml(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The address in an Autodiscover request body (`<EMailAddress>`).
pub fn request_address(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<EMailAddress>")? + "<EMailAddress>".len();
    let end = text[start..].find("</EMailAddress>")? + start;
    checked_address(text[start..end].trim()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClientSettings {
        ClientSettings {
            hostname: "mail.example.com".into(),
            imaps: Some(993),
            submissions: Some(465),
            submission: Some(587),
            ..ClientSettings::default()
        }
    }

    #[test]
    fn documents_are_escaped_and_list_the_offered_servers() {
        let t = thunderbird(&settings(), "ex<ample>.com");
        assert!(t.contains("<domain>ex&lt;ample&gt;.com</domain>"));
        assert!(t.contains("<port>993</port><socketType>SSL</socketType>"));
        assert!(t.contains("<port>587</port><socketType>STARTTLS</socketType>"));
        assert!(!t.contains("pop3"));
        let a = autodiscover(&settings(), "a@example.com");
        assert!(a.contains("<Type>IMAP</Type><Server>mail.example.com</Server><Port>993</Port>"));
        assert_eq!(
            request_address(b"<Request><EMailAddress>a@example.com</EMailAddress></Request>").as_deref(),
            Some("a@example.com")
        );
        assert_eq!(request_address(b"<EMailAddress>a<b@x</EMailAddress>"), None);
    }
}
