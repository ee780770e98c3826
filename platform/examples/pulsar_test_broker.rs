//! Runs the Pulsar **test broker** (`platform/tests/support/pulsar_broker`, a double that
//! speaks Pulsar's binary protocol, in memory; not Pulsar and not its speed) on its own, for
//! `tern-bench` runs over several nodes with the bus on Pulsar:
//!
//! ```sh
//! cargo run --release -p tern-platform --features pulsar --example pulsar_test_broker -- 127.0.0.1:6650
//! ```
//!
//! It prints `pulsar test broker: listening on pulsar://…`, then every 10 s how many SEND
//! frames and messages it took (messages per frame: the adapter's batching), and serves
//! until the process is killed.
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/pulsar_broker/mod.rs"]
mod pulsar_broker;

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:6650".to_owned());
    let broker = pulsar_broker::TestBroker::start_on(&addr).await.unwrap();
    println!("pulsar test broker: listening on {}", broker.url());
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        every.tick().await;
        let (sends, messages) = broker.sends();
        println!("pulsar test broker: SEND frames={sends} messages={messages}");
    }
}
