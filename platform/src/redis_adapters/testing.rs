//! Test support for suites that run against a real Redis: a TCP forwarder that a test can
//! cut, as when Redis or the network path to it goes away. Used by the adapters' own suite
//! and by the binary's scale-out tests (several `tern serve` processes).

/// A TCP forwarder to Redis that can be cut: while cut, its connections are closed and new
/// ones are dropped on arrival (refused, in effect).
pub struct CuttableProxy {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
}

impl CuttableProxy {
    /// Starts forwarding to the Redis at `redis_url` (`redis://host:port[/db]`).
    pub async fn start(redis_url: &str) -> std::io::Result<Self> {
        let target = redis_url
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, cut_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if *cut_rx.borrow() {
                    continue; // dropped on arrival
                }
                let target = target.clone();
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Ok(Self { addr, cut })
    }

    /// The proxy's address as a Redis URL.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Cuts (`true`) or restores (`false`) the path to Redis.
    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}
