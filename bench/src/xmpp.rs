//! A minimal XMPP client over WebSocket (RFC 7395) for driving a peer server (ejabberd)
//! with the same load generator as Tern: open the stream, SASL PLAIN, bind a resource,
//! start the session, send initial presence; then 1:1 `chat` messages, MUC join and
//! `groupchat` messages. Each WebSocket text frame carries one element (RFC 7395 §3.3),
//! which is parsed with quick-xml into the few fields the bench reads.
//!
//! Message bodies carry the sender's clock: `"{t_us}"` for 1:1 chat, `"{t_us} {k}"` for
//! group messages, where `k` numbers the group's messages.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use base64::Engine;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The write half of a logged-in session, shared by the tasks that send on it.
pub type Writer = Arc<tokio::sync::Mutex<SplitSink<Ws, WsMessage>>>;

/// The read half of a logged-in session.
pub type ReadHalf = SplitStream<Ws>;

/// The parts of a top-level element the bench reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stanza {
    /// Local name of the top-level element: `message`, `presence`, `iq`, `open`,
    /// `features`, `success`, `failure`, `close`, ...
    pub name: String,
    pub kind: Option<String>,
    pub id: Option<String>,
    pub from: Option<String>,
    /// Text of a `<body>` child.
    pub body: Option<String>,
    /// `code` attributes of MUC `<status>` elements (110: this is you; 201: room created).
    pub status: Vec<u16>,
    /// Local name of the first child (the SASL failure condition, say).
    pub first_child: Option<String>,
}

impl Stanza {
    pub fn is_error(&self) -> bool {
        self.kind.as_deref() == Some("error")
    }
}

fn attributes(e: &BytesStart<'_>, s: &mut Stanza) {
    for a in e.attributes().flatten() {
        let Ok(v) = a.unescape_value() else { continue };
        match a.key.local_name().as_ref() {
            b"type" => s.kind = Some(v.into_owned()),
            b"id" => s.id = Some(v.into_owned()),
            b"from" => s.from = Some(v.into_owned()),
            _ => {}
        }
    }
}

fn status_code(e: &BytesStart<'_>) -> Option<u16> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == b"code")
        .and_then(|a| a.unescape_value().ok()?.parse().ok())
}

/// Parses one frame's element. Malformed XML yields what was read before the fault.
pub fn parse(frame: &str) -> Stanza {
    let mut reader = Reader::from_str(frame);
    let mut s = Stanza::default();
    let mut depth = 0usize;
    let mut in_body = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = e.local_name();
                if depth == 0 {
                    s.name = String::from_utf8_lossy(name.as_ref()).into_owned();
                    attributes(&e, &mut s);
                } else {
                    if depth == 1 && s.first_child.is_none() {
                        s.first_child = Some(String::from_utf8_lossy(name.as_ref()).into_owned());
                    }
                    in_body = depth == 1 && name.as_ref() == b"body";
                    if name.as_ref() == b"status" {
                        s.status.extend(status_code(&e));
                    }
                }
                depth += 1;
            }
            Ok(Event::Empty(e)) => {
                let name = e.local_name();
                if depth == 0 {
                    s.name = String::from_utf8_lossy(name.as_ref()).into_owned();
                    attributes(&e, &mut s);
                    break;
                }
                if depth == 1 && s.first_child.is_none() {
                    s.first_child = Some(String::from_utf8_lossy(name.as_ref()).into_owned());
                }
                if name.as_ref() == b"status" {
                    s.status.extend(status_code(&e));
                }
            }
            Ok(Event::Text(t)) if in_body => {
                if let Ok(text) = t.xml_content() {
                    s.body.get_or_insert_with(String::new).push_str(&text);
                }
            }
            Ok(Event::End(_)) => {
                in_body = false;
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    s
}

/// Where and as whom a client logs in.
#[derive(Debug, Clone)]
pub struct Login<'a> {
    /// `ws://host:port/ws`
    pub url: &'a str,
    /// The XMPP domain (`localhost`).
    pub domain: &'a str,
    pub user: &'a str,
}

fn open_frame(domain: &str) -> WsMessage {
    WsMessage::text(format!(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{domain}' version='1.0'/>"
    ))
}

/// The next element from the server; pings and pongs are skipped.
pub async fn next_stanza(ws: &mut Ws) -> Result<Stanza> {
    while let Some(m) = ws.next().await {
        match m? {
            WsMessage::Text(t) => return Ok(parse(t.as_str())),
            WsMessage::Close(c) => bail!("the server closed the stream ({c:?})"),
            _ => {}
        }
    }
    bail!("the server closed the stream")
}

/// Reads elements until one satisfies `want`; a stream `close` or error fails.
async fn wait_for(ws: &mut Ws, what: &str, want: impl Fn(&Stanza) -> bool) -> Result<Stanza> {
    loop {
        let s = next_stanza(ws).await.with_context(|| format!("waiting for {what}"))?;
        if want(&s) {
            return Ok(s);
        }
        if s.name == "close" || s.name == "error" {
            bail!(
                "stream ended while waiting for {what}: {}",
                s.first_child.unwrap_or_default()
            );
        }
    }
}

async fn iq(ws: &mut Ws, id: &str, xml: String) -> Result<Stanza> {
    ws.send(WsMessage::text(xml)).await?;
    let s = wait_for(ws, id, |s| s.name == "iq" && s.id.as_deref() == Some(id)).await?;
    if s.is_error() {
        bail!("iq {id} refused");
    }
    Ok(s)
}

/// Opens a WebSocket with the `xmpp` subprotocol and logs in: SASL PLAIN, bind, session,
/// initial presence (confirmed by a ping round trip). The password is the user name (the peer's benchmark config accepts
/// any).
pub async fn login(l: &Login<'_>) -> Result<Ws> {
    let mut req = l.url.into_client_request()?;
    req.headers_mut().insert("Sec-WebSocket-Protocol", "xmpp".parse()?);
    // Small buffers, as the lean Tern clients use: thousands of clients share the machine.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), false)
        .await
        .context("connecting")?;
    ws.send(open_frame(l.domain)).await?;
    wait_for(&mut ws, "features", |s| s.name == "features").await?;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{}\0{}", l.user, l.user));
    ws.send(WsMessage::text(format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"
    )))
    .await?;
    let s = wait_for(&mut ws, "sasl", |s| s.name == "success" || s.name == "failure").await?;
    if s.name == "failure" {
        bail!("SASL PLAIN refused: {}", s.first_child.unwrap_or_default());
    }
    ws.send(open_frame(l.domain)).await?;
    wait_for(&mut ws, "features", |s| s.name == "features").await?;
    iq(
        &mut ws,
        "b1",
        "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>"
            .to_owned(),
    )
    .await?;
    iq(
        &mut ws,
        "s1",
        "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>".to_owned(),
    )
    .await?;
    ws.send(WsMessage::text("<presence/>")).await?;
    // The session handles its stanzas in order: once this ping is answered, the initial
    // presence has been processed and messages to the bare JID reach this resource.
    iq(
        &mut ws,
        "p1",
        format!(
            "<iq type='get' id='p1' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
            l.domain
        ),
    )
    .await?;
    Ok(ws)
}

/// Joins the MUC room `room` (a bare JID) as `nick`, without history; returns once the
/// room has sent this occupant's own presence. A room this join created is unlocked
/// as an instant room (XEP-0045 §10.1.2).
pub async fn join_room(ws: &mut Ws, room: &str, nick: &str) -> Result<()> {
    let me = format!("{room}/{nick}");
    ws.send(WsMessage::text(format!(
        "<presence to='{me}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
    )))
    .await?;
    let s = wait_for(ws, "the room's presence", |s| {
        s.name == "presence" && s.from.as_deref() == Some(me.as_str())
    })
    .await?;
    if s.is_error() {
        bail!("joining {room} refused");
    }
    if s.status.contains(&201) {
        iq(
            ws,
            "c1",
            format!(
                "<iq type='set' id='c1' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"
            ),
        )
        .await?;
    }
    Ok(())
}

/// Splits a logged-in session into a shared writer and its read half.
pub fn split(ws: Ws) -> (Writer, ReadHalf) {
    let (w, r) = ws.split();
    (Arc::new(tokio::sync::Mutex::new(w)), r)
}

/// A 1:1 chat message to `to` (a bare JID) whose body is the send time.
pub fn chat_message(to: &str, t_us: u64, id: u64) -> WsMessage {
    WsMessage::text(format!(
        "<message to='{to}' type='chat' id='m{id}'><body>{t_us}</body></message>"
    ))
}

/// A groupchat message to `room` numbered `k`, carrying its send time.
pub fn group_message(room: &str, t_us: u64, k: usize) -> WsMessage {
    WsMessage::text(format!(
        "<message to='{room}' type='groupchat' id='g{k}'><body>{t_us} {k}</body></message>"
    ))
}

/// Sends one frame on a shared writer.
pub async fn send(w: &Writer, m: WsMessage) -> bool {
    w.lock().await.send(m).await.is_ok()
}

/// `(t_us, k)` from a message body written by `chat_message` (k = 0) or `group_message`.
pub fn stamp(body: &str) -> Option<(u64, i64)> {
    let mut parts = body.split_whitespace();
    let t = parts.next()?.parse().ok()?;
    let k = parts.next().map_or(Some(0), |k| k.parse().ok())?;
    Some((t, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_chat_message() {
        let s = parse("<message xmlns='jabber:client' from='u1@localhost/bench' to='u2@localhost' type='chat' id='m7'><body>1712 3</body></message>");
        assert_eq!(s.name, "message");
        assert_eq!(s.kind.as_deref(), Some("chat"));
        assert_eq!(s.from.as_deref(), Some("u1@localhost/bench"));
        assert_eq!(s.body.as_deref(), Some("1712 3"));
        assert_eq!(stamp(s.body.as_deref().unwrap_or("")), Some((1712, 3)));
    }

    #[test]
    fn reads_framing_and_sasl_elements() {
        assert_eq!(
            parse("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='x' version='1.0'/>").name,
            "open"
        );
        let f = parse("<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>");
        assert_eq!(f.name, "features");
        let e = parse("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
        assert_eq!(
            (e.name.as_str(), e.first_child.as_deref()),
            ("failure", Some("not-authorized"))
        );
    }

    #[test]
    fn reads_muc_self_presence_codes() {
        let s = parse("<presence from='bench@conference.localhost/g0'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/><status code='110'/><status code='201'/></x></presence>");
        assert_eq!(s.status, vec![110, 201]);
        assert!(!s.is_error());
    }

    #[test]
    fn a_body_that_is_not_a_stamp_is_ignored() {
        assert_eq!(stamp("hello"), None);
        assert_eq!(stamp("12"), Some((12, 0)));
    }
}
