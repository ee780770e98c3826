//! Two-terminal chat over the SDK: prints everything that arrives, sends each stdin line.
//!
//! ```text
//! cargo run -p tern-sdk --example chat -- --url ws://127.0.0.1:8080/v1/connect \
//!     --token "$(tern token --app ak_... --user alice)" --to bob
//! ```
//!
//! Options: `--to USER` or `--group GROUP` or `--room ROOM` (where lines go),
//! `--device ID` (default `chat-example`), `--platform desktop|ios|android|web|other`.

use std::str::FromStr;

use tern_sdk::{Client, ConnectionState, Event, Platform, Target};
use tokio::io::{AsyncBufReadExt, BufReader};

struct Args {
    url: String,
    token: String,
    target: Target,
    device: String,
    platform: Platform,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut token = None;
    let mut target = None;
    let mut device = "chat-example".to_owned();
    let mut platform = Platform::Desktop;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--token" => token = Some(value()?),
            "--to" => target = Some(Target::User(value()?)),
            "--group" => target = Some(Target::Group(value()?)),
            "--room" => target = Some(Target::Room(value()?)),
            "--device" => device = value()?,
            "--platform" => platform = Platform::from_str(&value()?)?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(Args {
        url: url.ok_or("--url is required")?,
        token: token.ok_or("--token is required")?,
        target: target.ok_or("one of --to, --group or --room is required")?,
        device,
        platform,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: chat --url WS_URL --token TOKEN (--to USER | --group G | --room R)");
            std::process::exit(2);
        }
    };
    let (client, mut events) = Client::connect(&args.url, &args.token, &args.device, args.platform).await?;
    if let Target::Room(room) = &args.target {
        let members = client.join_room(room).await?;
        println!("* joined {room} ({members} here)");
    }
    println!("* connected; type a line and press enter to send it");

    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            match ev {
                Event::Message(m) => {
                    let who = m.sender.as_deref().unwrap_or("system");
                    let text = m.content["text"]
                        .as_str()
                        .map_or_else(|| m.content.to_string(), str::to_owned);
                    println!("[{} #{}] {who}: {text}", m.conversation_id, m.seq);
                }
                Event::Changed(c) => println!("* {} #{} changed: {:?}", c.conversation_id, c.seq, c.kind),
                Event::Receipt {
                    conversation_id,
                    user_id,
                    read_seq,
                } => println!("* {user_id} read {conversation_id} up to #{read_seq}"),
                Event::Typing { user_id, .. } => println!("* {user_id} is typing…"),
                Event::Presence(p) => println!("* {} is {}", p.user_id, if p.online { "online" } else { "offline" }),
                Event::Notification { content, .. } => println!("* notification: {content}"),
                Event::RoomLeft { room_id, reason } => println!("* left room {room_id} ({reason})"),
                Event::Kicked { code, reason } => println!("* kicked ({code}): {reason}"),
                Event::Connection(ConnectionState::Closed { code, reason }) => {
                    println!("* closed ({code}): {reason}");
                    std::process::exit(1);
                }
                Event::Connection(state) => println!("* {state:?}"),
            }
        }
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match client
            .send(args.target.clone(), "text", serde_json::json!({ "text": line }))
            .await
        {
            Ok(ack) => println!("* sent as #{}", ack.seq),
            Err(e) => println!("* not sent: {e}"),
        }
    }
    client.close();
    Ok(())
}
