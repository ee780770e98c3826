//! A live room from end to end: the app's backend creates a room with the server API,
//! three users join it over the SDK, a host talks, a latecomer gets the backlog, counts go
//! up and down, and the room is dismissed (everyone in it is told).
//!
//! ```text
//! tern tenant create Acme
//! tern app create --tenant Acme --name demo        # note app_key and app_secret
//! cargo run -p tern-sdk --example room -- --app-key ak_... --app-secret sk_...
//! ```
//!
//! Options: `--url URL` (default `http://127.0.0.1:8080`), `--room ID` (default
//! `demo-room`), `--stay` to keep the room and stay in it as `you`, sending each stdin line.

use std::time::Duration;

use serde_json::json;
use tern_sdk::server::{ServerClient, ServerError};
use tern_sdk::{Client, Event, Events, Platform, Target};
use tokio::io::{AsyncBufReadExt, BufReader};

struct Args {
    url: String,
    app: String,
    secret: String,
    room: String,
    stay: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut url = "http://127.0.0.1:8080".to_owned();
    let (mut app, mut secret) = (None, None);
    let mut room = "demo-room".to_owned();
    let mut stay = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = value()?,
            "--app-key" | "--app" => app = Some(value()?),
            "--app-secret" | "--secret" => secret = Some(value()?),
            "--room" => room = value()?,
            "--stay" => stay = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(Args {
        url,
        app: app.ok_or("--app is required")?,
        secret: secret.ok_or("--secret is required")?,
        room,
        stay,
    })
}

/// Connects `user` over the SDK with a token the backend minted for them.
async fn connect(
    server: &ServerClient,
    ws_url: &str,
    user: &str,
) -> Result<(Client, Events), Box<dyn std::error::Error>> {
    let token = server.user_token(user, Some(3600)).await?;
    Ok(Client::connect(ws_url, &token.token, &format!("{user}-example"), Platform::Desktop).await?)
}

/// Prints the room messages and room events a user receives, as they arrive.
fn print_events(user: &'static str, mut events: Events) {
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            match ev {
                Event::Message(m) if m.conversation_id.starts_with("r:") => {
                    let text = m.content["text"].as_str().unwrap_or_default();
                    println!(
                        "  {user:>6} sees #{} from {}: {text}",
                        m.seq,
                        m.sender.as_deref().unwrap_or("system")
                    );
                }
                Event::RoomLeft { room_id, reason } => println!("  {user:>6} left {room_id} ({reason})"),
                _ => {}
            }
        }
    });
}

async fn pause() {
    // Only so the printed lines come out in a readable order.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: room --app-key APP_KEY --app-secret APP_SECRET [--url URL] [--room ID] [--stay]");
            std::process::exit(2);
        }
    };
    let server = ServerClient::new(&args.url, &args.app, &args.secret);
    let ws_url = format!(
        "{}/v1/connect",
        args.url
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1)
    );

    // The backend: users, and the room (reused if it exists from an earlier run).
    let users = ["host", "alice", "bob", "carol", "you"].map(|u| json!({"id": u, "name": u}));
    server.upsert_users(&users).await?;
    match server
        .create_room(&args.room, Some("Demo room"), Some(json!({"topic": "a tour of rooms"})))
        .await
    {
        Ok(r) => println!("* created room {} ({})", r.id, r.name),
        Err(ServerError::Api { code, .. }) if code == "conflict" => println!("* room {} exists; using it", args.room),
        Err(e) => return Err(e.into()),
    }

    // Three users join over the SDK; each sees the room's messages from then on.
    let (host, host_ev) = connect(&server, &ws_url, "host").await?;
    let (alice, alice_ev) = connect(&server, &ws_url, "alice").await?;
    let (bob, bob_ev) = connect(&server, &ws_url, "bob").await?;
    print_events("alice", alice_ev);
    print_events("bob", bob_ev);
    drop(host_ev);
    for (name, client) in [("host", &host), ("alice", &alice), ("bob", &bob)] {
        let count = client.join_room(&args.room).await?;
        println!("* {name} joined: {count} in the room");
    }
    let info = alice.room_info(&args.room).await?;
    println!(
        "* room info from the SDK: {:?}, {} members, metadata {}",
        info.name, info.member_count, info.metadata
    );

    for text in ["welcome, everyone", "the show starts in a minute", "here we go"] {
        let ack = host
            .send(Target::Room(args.room.clone()), "text", json!({ "text": text }))
            .await?;
        println!("* host sent #{}", ack.seq);
    }
    pause().await;

    // A latecomer gets the room's last messages (the app's room_backlog) when joining.
    let (carol, carol_ev) = connect(&server, &ws_url, "carol").await?;
    print_events("carol", carol_ev);
    println!("* carol joins late: {} in the room", carol.join_room(&args.room).await?);
    pause().await;

    // Leaving stops delivery at once; the server API sees the count change.
    bob.leave_room(&args.room).await?;
    host.send(
        Target::Room(args.room.clone()),
        "text",
        json!({"text": "bob won't see this"}),
    )
    .await?;
    pause().await;
    let room = server.room(&args.room).await?;
    println!(
        "* server API: {} in the room, last seq {}",
        room.member_count, room.last_seq
    );

    if args.stay {
        let (you, you_ev) = connect(&server, &ws_url, "you").await?;
        print_events("you", you_ev);
        you.join_room(&args.room).await?;
        println!("* you are in {}; type a line and press enter to send it", args.room);
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            if !line.trim().is_empty() {
                you.send(Target::Room(args.room.clone()), "text", json!({ "text": line.trim() }))
                    .await?;
            }
        }
        return Ok(());
    }

    // Dismissal: the room and its history go; everyone still in it is told.
    let sessions = server.dismiss_room(&args.room).await?;
    println!("* dismissed the room ({sessions} connections were in it)");
    pause().await;
    for c in [host, alice, bob, carol] {
        c.close();
    }
    Ok(())
}
