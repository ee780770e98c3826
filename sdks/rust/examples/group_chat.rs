//! A tour of groups against a running server: three users (alice, bob, carol) connect with
//! the SDK, and alice creates a group, takes a join request, mentions bob, learns who read
//! it, mutes carol for a moment, hands the group over, and so on. Every event each user gets
//! is printed as it arrives.
//!
//! ```text
//! tern serve                                       # in another terminal
//! tern tenant create Demo
//! tern app create --tenant Demo --name demo        # prints app_key and app_secret
//! cargo run -p tern-sdk --example group_chat -- --app-key ak_... --app-secret sk_...
//! ```
//!
//! Options: `--url URL` (default `http://127.0.0.1:8080`), `--ws URL` (default: derived from
//! `--url`), `--keep` (leave the group in place and print how to chat in it with the `chat`
//! example; by default the tour ends by dismissing it).

use std::time::Duration;

use serde_json::json;
use tern_sdk::server::ServerClient;
use tern_sdk::{
    Client, ClientOptions, Event, Events, GroupChanges, GroupNotice, JoinOutcome, NewGroup, Platform, SendOptions,
    Target,
};

struct Args {
    http: String,
    ws: String,
    app_key: String,
    app_secret: String,
    keep: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut http = "http://127.0.0.1:8080".to_owned();
    let mut ws = None;
    let mut app_key = None;
    let mut app_secret = None;
    let mut keep = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" | "--http" => http = value()?,
            "--ws" => ws = Some(value()?),
            "--app-key" => app_key = Some(value()?),
            "--app-secret" => app_secret = Some(value()?),
            "--keep" => keep = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let http = http.trim_end_matches('/').to_owned();
    let ws = ws.unwrap_or_else(|| format!("{}/v1/connect", http.replacen("http", "ws", 1)));
    Ok(Args {
        http,
        ws,
        app_key: app_key.ok_or("--app-key is required")?,
        app_secret: app_secret.ok_or("--app-secret is required")?,
        keep,
    })
}

/// Prints what one user sees, and hands the events on for the tour to wait on.
fn watch(name: &'static str, mut events: Events) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            match &ev {
                Event::Message(m) => match GroupNotice::of(m) {
                    Some(n) => {
                        let mut rest = n.content.clone();
                        if let Some(o) = rest.as_object_mut() {
                            for k in ["event", "group_id", "by"] {
                                o.remove(k);
                            }
                        }
                        let by = n.by.as_deref().unwrap_or("the app");
                        println!(
                            "  [{name}] {} #{}: {} by {by} {rest}",
                            m.conversation_id, m.seq, n.event
                        );
                    }
                    None => {
                        let mention = if m.mentions.iter().any(|u| u == name) || m.mention_all {
                            " (mentions you)"
                        } else {
                            ""
                        };
                        println!(
                            "  [{name}] {} #{} {}: {}{mention}",
                            m.conversation_id,
                            m.seq,
                            m.sender.as_deref().unwrap_or("system"),
                            m.content["text"].as_str().unwrap_or("")
                        );
                    }
                },
                Event::Receipt {
                    conversation_id,
                    user_id,
                    read_seq,
                } => println!("  [{name}] receipt: {user_id} read {conversation_id} up to #{read_seq}"),
                Event::Notification { content, .. } => println!("  [{name}] notification: {content}"),
                Event::Connection(_) | Event::Typing { .. } | Event::Presence(_) => {}
                other => println!("  [{name}] {other:?}"),
            }
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (up to 10 s) for the event `pick` selects.
async fn wait<T>(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> Result<T, String> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = rx.recv().await {
            if let Some(t) = pick(&ev) {
                return Ok(t);
            }
        }
        Err("the event stream ended".to_owned())
    })
    .await
    .map_err(|_| "timed out waiting for an event".to_owned())?
}

/// A group notice: in the group's timeline (a message), or in the user's own system
/// conversation when they are no longer in the group (a notification).
fn notice(event: &'static str) -> impl FnMut(&Event) -> Option<()> {
    move |e| {
        let n = match e {
            Event::Message(m) => GroupNotice::of(m),
            e => GroupNotice::of_notification(e),
        };
        n.filter(|n| n.event == event).map(|_| ())
    }
}

async fn user(tern: &ServerClient, ws: &str, id: &str) -> Result<(Client, Events), Box<dyn std::error::Error>> {
    tern.create_user(id, &id[..1].to_uppercase()).await?;
    let token = tern.user_token(id, Some(3600)).await?.token;
    let options = ClientOptions {
        request_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    };
    Ok(Client::connect_with(ws, &token, &format!("{id}-group-tour"), Platform::Desktop, options).await?)
}

fn step(text: &str) {
    println!("\n* {text}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: group_chat --app-key AK --app-secret SK [--url URL] [--ws URL] [--keep]");
            std::process::exit(2);
        }
    };
    let tern = ServerClient::new(&args.http, &args.app_key, &args.app_secret);
    let (alice, alice_events) = user(&tern, &args.ws, "alice").await?;
    let (bob, bob_events) = user(&tern, &args.ws, "bob").await?;
    let (carol, carol_events) = user(&tern, &args.ws, "carol").await?;
    let (mut alice_rx, mut bob_rx, mut carol_rx) = (
        watch("alice", alice_events),
        watch("bob", bob_events),
        watch("carol", carol_events),
    );
    let group = format!("tour-{:08x}", rand::random::<u32>());

    step(&format!("alice creates {group} with bob (join policy: approval)"));
    let g = alice
        .create_group(NewGroup {
            group_id: group.clone(),
            name: "Group tour".into(),
            members: vec!["bob".into()],
            announcement: "Welcome to the tour".into(),
            ..NewGroup::default()
        })
        .await?;
    println!(
        "  created: {} owned by {}, {} members",
        g.group_id, g.owner, g.member_count
    );
    wait(&mut bob_rx, notice("group_created")).await?;

    step("carol asks to join; alice (the owner) is told and accepts");
    if let JoinOutcome::Requested(r) = carol.join_group(&group, "hi, it's carol").await? {
        println!("  carol's request is {}", r.state);
    }
    wait(&mut alice_rx, |e| match e {
        Event::Notification { content, .. } if content["type"] == "group_join_request" => Some(()),
        _ => None,
    })
    .await?;
    alice.answer_join_request(&group, "carol", true).await?;
    wait(&mut carol_rx, notice("member_joined")).await?;

    step("alice writes, mentioning bob; bob reads it and alice gets a receipt");
    let hello = alice
        .send_with_options(
            Target::Group(group.clone()),
            "text",
            json!({"text": "@bob could you look at this?"}),
            &format!("tour-{}", rand::random::<u64>()),
            &SendOptions {
                mentions: vec!["bob".into()],
                mention_all: false,
            },
        )
        .await?;
    let seen = wait(&mut bob_rx, |e| match e {
        Event::Message(m) if m.msg_id == hello.msg_id => Some(m.seq),
        _ => None,
    })
    .await?;
    let before = bob.read(&hello.conversation_id, seen - 1).await?;
    println!("  bob's conversation is flagged as mentioned: {}", before.mentioned);
    let after = bob.read(&hello.conversation_id, seen).await?;
    println!(
        "  after reading it: mentioned {}, unread {}",
        after.mentioned, after.unread
    );
    wait(&mut alice_rx, |e| {
        matches!(e, Event::Receipt { user_id, .. } if user_id == "bob").then_some(())
    })
    .await?;
    for c in alice.read_counts(&group, &[&hello.msg_id]).await? {
        println!("  read by {} of {} members", c.read, c.read + c.unread);
    }
    println!(
        "  not read yet by: {:?}",
        alice.readers(&group, &hello.msg_id, true, None, 50).await?
    );

    step("alice makes bob an admin; bob mutes carol, whose send fails, then lifts it");
    alice.set_member_role(&group, "bob", "admin").await?;
    bob.mute_member(&group, "carol", None).await?;
    let refused = carol
        .send(Target::Group(group.clone()), "text", json!({"text": "can I speak?"}))
        .await;
    println!("  carol's send: {:?}", refused.err().map(|e| e.to_string()));
    bob.unmute_member(&group, "carol").await?;
    carol
        .send(Target::Group(group.clone()), "text", json!({"text": "thanks, bob"}))
        .await?;

    step("alice changes the announcement, then hands the group to bob and leaves");
    alice
        .update_group(
            &group,
            GroupChanges {
                announcement: Some("bob runs this group now".into()),
                ..GroupChanges::default()
            },
        )
        .await?;
    alice.transfer_group(&group, "bob").await?;
    alice.leave_group(&group).await?;
    wait(&mut carol_rx, notice("member_left")).await?;
    let members: Vec<String> = bob
        .members(&group, None, 50)
        .await?
        .into_iter()
        .map(|m| format!("{} ({})", m.user_id, m.role))
        .collect();
    println!("  members now: {}", members.join(", "));

    if args.keep {
        step("the group stays; chat in it with the chat example:");
        for who in ["bob", "carol"] {
            let token = tern.user_token(who, Some(3600)).await?.token;
            println!(
                "  cargo run -p tern-sdk --example chat -- --url {} --group {group} --device {who}-chat --token {token}",
                args.ws
            );
        }
    } else {
        step("bob dismisses the group; carol is told in her own conversation");
        bob.dismiss_group(&group).await?;
        wait(&mut carol_rx, notice("group_dismissed")).await?;
    }
    // Let the last pushes print before the connections close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in [&alice, &bob, &carol] {
        c.close();
    }
    println!("\ndone");
    Ok(())
}
