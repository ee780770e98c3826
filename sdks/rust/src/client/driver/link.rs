//! The connection under the driver, on either transport: the WebSocket (`tern.v1.proto`,
//! binary frames) or the gRPC stream (`tern.client.v1.Gateway/Connect`). Both carry the
//! same `ClientFrame`s and `ServerFrame`s, so the driver above does not know which it has.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::client::{ClientOptions, Transport, SUBPROTOCOL};
use crate::proto as pb;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Frames the driver may have written that the gRPC stream has not sent yet.
const GRPC_OUT_FRAMES: usize = 64;

// One per client, made once per connection: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Link {
    Ws(Box<Ws>),
    Grpc {
        /// `None` once the app closed its side.
        tx: Option<mpsc::Sender<pb::ClientFrame>>,
        rx: tonic::Streaming<pb::ServerFrame>,
    },
}

/// What came from the server (a frame moves once, to the driver).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Read {
    Frame(pb::ServerFrame),
    /// Nothing for the driver (a ping, a pong).
    Skip,
    /// The connection is over, for this reason.
    Lost(String),
}

/// Why opening failed.
pub(crate) enum LinkError {
    /// The URL or the options cannot work: retrying will not help.
    Refused {
        code: String,
        message: String,
    },
    Network(String),
}

/// The client's frames as the request stream of the gRPC call.
struct Outgoing(mpsc::Receiver<pb::ClientFrame>);

impl futures::Stream for Outgoing {
    type Item = pb::ClientFrame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<pb::ClientFrame>> {
        self.0.poll_recv(cx)
    }
}

impl Link {
    /// Opens a connection to `url` on the transport the options choose.
    pub(crate) async fn open(url: &str, options: &ClientOptions) -> Result<Link, LinkError> {
        match options.transport {
            Transport::Ws => Self::open_ws(url, options).await,
            Transport::Grpc => Self::open_grpc(url, options).await,
        }
    }

    async fn open_ws(url: &str, options: &ClientOptions) -> Result<Link, LinkError> {
        let mut req = url.into_client_request().map_err(|e| LinkError::Refused {
            code: "invalid_url".into(),
            message: e.to_string(),
        })?;
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
        let connector = match &options.tls_ca_pem {
            Some(pem) => Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
                super::super::tls_config_for_ca(pem).map_err(|message| LinkError::Refused {
                    code: "invalid_tls_ca".into(),
                    message,
                })?,
            ))),
            None => None,
        };
        let connect = tokio_tungstenite::connect_async_tls_with_config(req, None, false, connector);
        let (ws, _) = tokio::time::timeout(options.request_timeout, connect)
            .await
            .map_err(|_| LinkError::Network("connect timed out".into()))?
            .map_err(|e| LinkError::Network(e.to_string()))?;
        Ok(Link::Ws(Box::new(ws)))
    }

    /// `http://host:port` (or `https://`, TLS with the public roots or `tls_ca_pem`): the
    /// node's gRPC port.
    async fn open_grpc(url: &str, options: &ClientOptions) -> Result<Link, LinkError> {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
        let invalid = |message: String| LinkError::Refused {
            code: "invalid_url".into(),
            message,
        };
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| invalid(format!("{url}: {e}")))?
            .connect_timeout(options.request_timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(options.request_timeout);
        if url.starts_with("https://") {
            let tls = match &options.tls_ca_pem {
                Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                None => ClientTlsConfig::new().with_webpki_roots(),
            };
            endpoint = endpoint.tls_config(tls).map_err(|e| LinkError::Refused {
                code: "invalid_tls_ca".into(),
                message: e.to_string(),
            })?;
        } else if !url.starts_with("http://") {
            return Err(invalid(format!(
                "{url}: the gRPC transport needs an http:// or https:// URL of the gRPC port"
            )));
        }
        let channel = tokio::time::timeout(options.request_timeout, endpoint.connect())
            .await
            .map_err(|_| LinkError::Network("connect timed out".into()))?
            .map_err(|e| LinkError::Network(format!("{e:?}")))?;
        let mut client = pb::gateway::gateway_client::GatewayClient::new(channel);
        if options.grpc_zstd {
            use tonic::codec::CompressionEncoding::Zstd;
            client = client.send_compressed(Zstd).accept_compressed(Zstd);
        }
        let (tx, rx) = mpsc::channel(GRPC_OUT_FRAMES);
        let call = client.connect(tonic::Request::new(Outgoing(rx)));
        let response = tokio::time::timeout(options.request_timeout, call)
            .await
            .map_err(|_| LinkError::Network("no answer to the call".into()))?
            .map_err(|s| LinkError::Network(format!("{}: {}", code_of(&s), s.message())))?;
        Ok(Link::Grpc {
            tx: Some(tx),
            rx: response.into_inner(),
        })
    }

    /// Writes one frame; false when the connection is over.
    pub(crate) async fn send(&mut self, f: &pb::ClientFrame) -> bool {
        match self {
            Link::Ws(ws) => ws.send(WsMessage::binary(f.encode_to_vec())).await.is_ok(),
            Link::Grpc { tx: Some(tx), .. } => tx.send(f.clone()).await.is_ok(),
            Link::Grpc { tx: None, .. } => false,
        }
    }

    /// The server's next frame. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Read {
        match self {
            Link::Ws(ws) => match ws.next().await {
                None => Read::Lost("closed".into()),
                Some(Err(e)) => Read::Lost(e.to_string()),
                Some(Ok(WsMessage::Binary(b))) => match pb::ServerFrame::decode(b.as_ref()) {
                    Ok(f) => Read::Frame(f),
                    Err(_) => Read::Lost("undecodable frame".into()),
                },
                Some(Ok(WsMessage::Close(c))) => {
                    Read::Lost(c.map_or_else(|| "closed".to_owned(), |c| c.reason.to_string()))
                }
                Some(Ok(_)) => Read::Skip,
            },
            Link::Grpc { rx, .. } => match rx.message().await {
                Ok(Some(f)) => Read::Frame(f),
                Ok(None) => Read::Lost("closed".into()),
                Err(s) => Read::Lost(format!("{}: {}", code_of(&s), s.message())),
            },
        }
    }

    /// Ends the connection from this side.
    pub(crate) async fn close(&mut self) {
        match self {
            Link::Ws(ws) => {
                let _ = WebSocketStream::close(ws.as_mut(), None).await;
            }
            // The end of the request stream: the server ends the call.
            Link::Grpc { tx, .. } => *tx = None,
        }
    }
}

/// The stable code a Tern status carries (`google.rpc.ErrorInfo` reason), else the gRPC code.
fn code_of(s: &tonic::Status) -> String {
    error_info_reason(s.details()).unwrap_or_else(|| format!("{:?}", s.code()))
}

/// The `reason` of the `google.rpc.ErrorInfo` in a status's details, read with prost
/// directly (google.rpc.Status: details = 3, Any: type_url = 1, value = 2; ErrorInfo:
/// reason = 1).
pub(crate) fn error_info_reason(details: &[u8]) -> Option<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(message, repeated, tag = "3")]
        details: Vec<prost_types::Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct ErrorInfo {
        #[prost(string, tag = "1")]
        reason: String,
    }
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .find(|a| a.type_url.ends_with("google.rpc.ErrorInfo"))
        .and_then(|a| ErrorInfo::decode(a.value.as_slice()).ok())
        .map(|i| i.reason)
        .filter(|r| !r.is_empty())
}
