//! A line sink of your own: every line as one UDP datagram to a collector,
//! and beside it the short form, a closure, counting warnings.
//!
//! A `LineSink` says where a line goes; `LineLayer` does the rest (the
//! encoding, shared with the JSON layer when both use one schema, the
//! per-thread buffer, the guard against recursion, oversize lines). A sink
//! that needs only `accept` is a closure: `spanline::sink_fn`.
//!
//! ```sh
//! cargo run --example custom_sink
//! ```

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use spanline::{ContextLayer, JsonLayer, LineEvent, LineLayer, LineSink, Schema};
use tracing_subscriber::prelude::*;

/// Sends each line to `to`, without ever blocking the caller.
#[derive(Debug)]
pub(crate) struct UdpSink {
    socket: UdpSocket,
    to: SocketAddr,
    /// Lines sent, and lines the socket refused (counted, never silent).
    pub(crate) sent: Arc<AtomicU64>,
    pub(crate) failed: Arc<AtomicU64>,
}

impl UdpSink {
    pub(crate) fn new(to: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?; // a full socket buffer drops, never waits
        Ok(Self {
            socket,
            to,
            sent: Arc::default(),
            failed: Arc::default(),
        })
    }
}

/// The full form: a type, and `LineSink`'s methods it needs.
impl LineSink for UdpSink {
    fn accept(&self, line: &[u8], _event: &LineEvent<'_>) {
        let counter = match self.socket.send_to(line, self.to) {
            Ok(_) => &self.sent,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// One datagram per line: longer lines are refused, and counted by the
    /// layer (`LineLayer::stats().oversize()`).
    fn max_line(&self) -> usize {
        60_000
    }
}

/// The short form: the closure is the sink's `accept`; the other methods
/// keep their defaults (every event, any length).
pub(crate) fn warning_counter(warnings: Arc<AtomicU64>) -> impl LineSink {
    spanline::sink_fn(move |_line: &[u8], event: &LineEvent<'_>| {
        if *event.metadata().level() <= tracing::Level::WARN {
            warnings.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn main() -> io::Result<()> {
    let collector = UdpSocket::bind("127.0.0.1:0")?;
    let sink = UdpSink::new(collector.local_addr()?)?;
    let sent = sink.sent.clone();
    let warnings = Arc::new(AtomicU64::new(0));

    // One schema for both layers: each event is encoded once.
    let schema = Schema::builder(spanline::Preset::Structlog)
        .service("example")
        .build();
    tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(JsonLayer::builder().schema(schema.clone()).build())
        .with(LineLayer::new(schema.clone(), sink))
        .with(LineLayer::new(schema, warning_counter(warnings.clone())))
        .init();

    let _job = tracing::info_span!("job", job_id = "report_1").entered();
    tracing::info!(rows = 3, "report ready");
    tracing::warn!(late_rows = 1, "report late");

    let mut buf = [0u8; 65_536];
    for _ in 0..2 {
        let n = collector.recv(&mut buf)?;
        let line = String::from_utf8_lossy(&buf[..n]);
        #[allow(clippy::disallowed_macros)] // the example's output
        {
            print!("collector got: {line}");
        }
    }
    #[allow(clippy::disallowed_macros)] // the example's output
    {
        println!("warnings counted: {}", warnings.load(Ordering::Relaxed));
    }
    assert_eq!(sent.load(Ordering::Relaxed), 2);
    assert_eq!(warnings.load(Ordering::Relaxed), 1);
    Ok(())
}
