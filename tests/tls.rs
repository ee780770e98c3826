//! `tern serve` with `TERN_TLS_CERT` and `TERN_TLS_KEY`: REST, the SDK WebSocket (wss) and
//! gRPC (the server API and the SDK's gRPC door) answer over TLS with certificates made
//! here by rcgen; a client that does not trust the CA is refused; a key of another
//! certificate stops the start; a new certificate written over the files is picked up
//! without restarting or dropping open sessions.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use tern_sdk::server::ServerClient;
use tern_sdk::{Client, ClientOptions, Event, Events, Message, Platform};
use tokio::io::AsyncWriteExt as _;

/// A CA and a server certificate it signed, for `localhost` and 127.0.0.1, as PEM.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn make_pki(name: &str) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("Tern test CA {name}"));
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// Writes the server's pair where `TERN_TLS_CERT` and `TERN_TLS_KEY` will point; the key
/// first, then the certificate, each by rename so the server never reads half a file.
fn install(dir: &Path, pki: &Pki) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    for (path, text) in [(&key, &pki.key_pem), (&cert, &pki.cert_pem)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (cert, key)
}

fn tls_env(cert: &Path, key: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("TERN_TLS_CERT", cert.display().to_string()),
        ("TERN_TLS_KEY", key.display().to_string()),
    ]
}

fn start(dir: &Path, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Server::start(dir, &env);
    server.wait_for_line("tern: ready");
    server
}

fn grpc_port(server: &mut Server) -> u16 {
    printed_grpc_addr(server).rsplit(':').next().unwrap().parse().unwrap()
}

fn options_trusting(ca_pem: &str) -> ClientOptions {
    ClientOptions {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        request_timeout: Duration::from_secs(10),
        tls_ca_pem: Some(ca_pem.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// The first message `wanted` accepts, passing over the others (the sender's own copy, a
/// message the connect's sync brought).
async fn message_where(events: &mut Events, wanted: impl Fn(&Message) -> bool) -> Message {
    loop {
        let m = next_message(events).await;
        if wanted(&m) {
            return m;
        }
    }
}

async fn next_message(events: &mut Events) -> Message {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.next())
            .await
            .unwrap()
            .unwrap();
        if let Event::Message(m) = ev {
            return m;
        }
    }
}

/// The gRPC health check over TLS, trusting `ca_pem`.
async fn grpc_health(port: u16, ca_pem: &str) -> Result<i32, String> {
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_wss_and_grpc_answer_over_tls_and_untrusting_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki("one");
    let (cert, key) = install(dir.path(), &pki);
    let mut server = start(dir.path(), &tls_env(&cert, &key));
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let grpc = grpc_port(&mut server);
    let base = server.base.replace("127.0.0.1", "localhost");
    let (app_key, app_secret) = cli_app(dir.path());

    // REST over TLS, trusting the test CA.
    let rest = ServerClient::with_ca_pem(&base, &app_key, &app_secret, pki.ca_pem.as_bytes()).unwrap();
    rest.create_user("alice", "Alice").await.unwrap();
    rest.create_user("bob", "Bob").await.unwrap();
    let token = rest.user_token("bob", Some(600)).await.unwrap().token;

    // The SDK over wss: a message sent by REST arrives.
    let ws = format!("{}/v1/connect", base.replace("https://", "wss://"));
    let (bob, mut events) =
        Client::connect_with(&ws, &token, "bob-phone", Platform::Ios, options_trusting(&pki.ca_pem))
            .await
            .unwrap();
    let sent = rest.send_text("alice", "bob", "tls-1", "over TLS").await.unwrap();
    let m = next_message(&mut events).await;
    assert_eq!(m.msg_id, sent.msg_id);
    assert_eq!(m.content["text"], "over TLS");

    // gRPC over TLS (h2 by ALPN): the health service answers SERVING (1).
    assert_eq!(grpc_health(grpc, &pki.ca_pem).await.unwrap(), 1);

    // The SDK's gRPC door over TLS on the same port: a message sent by REST arrives.
    let grpc_url = format!("https://localhost:{grpc}");
    let over_grpc = |ca: &str| ClientOptions {
        transport: tern_sdk::Transport::Grpc,
        ..options_trusting(ca)
    };
    let (bob_grpc, mut grpc_events) =
        Client::connect_with(&grpc_url, &token, "bob-desk", Platform::Desktop, over_grpc(&pki.ca_pem))
            .await
            .unwrap();
    let sent = rest.send_text("alice", "bob", "tls-2", "over gRPC TLS").await.unwrap();
    message_where(&mut grpc_events, |m| m.msg_id == sent.msg_id).await;
    message_where(&mut events, |m| m.msg_id == sent.msg_id).await;

    // Clients that do not trust the CA are refused, on every door.
    let stranger = make_pki("stranger");
    let public_roots_only = ServerClient::new(&base, &app_key, &app_secret);
    let e = public_roots_only.get_user("alice").await.unwrap_err();
    assert!(matches!(e, tern_sdk::server::ServerError::Transport(_)), "{e}");
    let other_ca = ServerClient::with_ca_pem(&base, &app_key, &app_secret, stranger.ca_pem.as_bytes()).unwrap();
    assert!(other_ca.get_user("alice").await.is_err());
    assert!(Client::connect_with(
        &ws,
        &token,
        "bob-tablet",
        Platform::Ios,
        options_trusting(&stranger.ca_pem)
    )
    .await
    .is_err());
    assert!(grpc_health(grpc, &stranger.ca_pem).await.is_err());
    assert!(Client::connect_with(
        &grpc_url,
        &token,
        "bob-laptop",
        Platform::Desktop,
        over_grpc(&stranger.ca_pem)
    )
    .await
    .is_err());

    // Plain HTTP on the TLS port and a handshake of garbage are dropped; the server is fine.
    let plain = reqwest::Client::new()
        .get(base.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP on the TLS port answered: {plain:?}");
    let port = base.rsplit(':').next().unwrap().to_owned();
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        let _ = s
            .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8])
            .await;
        drop(s);
    }
    let user = rest.get_user("alice").await.unwrap();
    assert!(user.to_string().contains("\"alice\""), "{user}");
    bob.close();
    bob_grpc.close();
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_key_that_is_not_the_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let one = make_pki("one");
    let two = make_pki("two");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &one.cert_pem).unwrap();
    std::fs::write(&key, &two.key_pem).unwrap();
    let out = tern_command(dir.path())
        .arg("serve")
        .env("TERN_HTTP_ADDR", "127.0.0.1:0")
        .env("TERN_GRPC_ADDR", "127.0.0.1:0")
        .env("TERN_TLS_CERT", &cert)
        .env("TERN_TLS_KEY", &key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not match") && stderr.contains("TERN_TLS_KEY") && stderr.contains("TERN_TLS_CERT"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("tern: listening"));

    // A key file without a key, and only one of the two variables, are refused as clearly.
    std::fs::write(&key, "not a key\n").unwrap();
    let out = tern_command(dir.path())
        .arg("serve")
        .env("TERN_TLS_CERT", &cert)
        .env("TERN_TLS_KEY", &key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TERN_TLS_KEY"));
    let out = tern_command(dir.path())
        .arg("serve")
        .env("TERN_TLS_CERT", &cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TERN_TLS_KEY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_is_picked_up_without_dropping_open_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_pki("first");
    let (cert, key) = install(dir.path(), &first);
    let mut server = start(dir.path(), &tls_env(&cert, &key));
    let grpc = grpc_port(&mut server);
    let base = server.base.replace("127.0.0.1", "localhost");
    let (app_key, app_secret) = cli_app(dir.path());
    let rest = ServerClient::with_ca_pem(&base, &app_key, &app_secret, first.ca_pem.as_bytes()).unwrap();
    rest.create_user("alice", "Alice").await.unwrap();
    rest.create_user("bob", "Bob").await.unwrap();
    let token = rest.user_token("bob", Some(600)).await.unwrap().token;
    let ws = format!("{}/v1/connect", base.replace("https://", "wss://"));
    let (bob, mut events) =
        Client::connect_with(&ws, &token, "bob-phone", Platform::Ios, options_trusting(&first.ca_pem))
            .await
            .unwrap();

    let second = make_pki("second");
    let fresh = ServerClient::with_ca_pem(&base, &app_key, &app_secret, second.ca_pem.as_bytes()).unwrap();
    assert!(
        fresh.get_user("alice").await.is_err(),
        "the second CA is not in use yet"
    );
    install(dir.path(), &second);
    eventually("new connections get the new certificate", || async {
        fresh.get_user("alice").await.is_ok()
    })
    .await;
    assert_eq!(grpc_health(grpc, &second.ca_pem).await.unwrap(), 1);

    // The session opened under the first certificate is still up: it gets a new message.
    let sent = fresh
        .send_text("alice", "bob", "after-reload", "still here")
        .await
        .unwrap();
    let m = next_message(&mut events).await;
    assert_eq!(m.msg_id, sent.msg_id);

    // A broken pair written later is refused by the reload; the second pair stays.
    std::fs::write(&key, first.key_pem.as_bytes()).unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(fresh.get_user("alice").await.is_ok());
    bob.close();
    assert!(server.terminate().success());
}
