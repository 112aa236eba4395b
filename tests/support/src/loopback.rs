//! An axum app served on 127.0.0.1 (an ephemeral port) from a thread of its own, stopped
//! gracefully when dropped: the scaffolding of every test server.
//!
//! Each connection is served by hyper directly (not `axum::serve`) so a handler can drop
//! its own connection without answering — what a crashed load balancer or a network cut does
//! to a client. Handlers reach that through the [`Connection`] request extension.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Notify;

/// The connection a request arrived on (an axum `Extension` of every request).
#[derive(Clone, Default)]
pub struct Connection {
    cut: Arc<Notify>,
}

impl Connection {
    /// Closes the connection at once, without an answer; the handler should then wait
    /// forever (its future is dropped with the connection).
    pub async fn cut(&self) -> ! {
        self.cut.notify_one();
        std::future::pending().await
    }
}

pub struct LoopbackServer {
    pub address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackServer {
    pub fn start(app: axum::Router) -> LoopbackServer {
        LoopbackServer::start_on("127.0.0.1:0".parse().expect("an address"), app)
    }

    /// Serves on a given address (a port used before, to play a restarted server).
    pub fn start_on(address: SocketAddr, app: axum::Router) -> LoopbackServer {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .expect("bind loopback");
                ready_tx
                    .send(listener.local_addr().expect("address"))
                    .expect("report the address");
                loop {
                    let stream = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                        _ = &mut shutdown_rx => break,
                    };
                    let connection = Connection::default();
                    let service =
                        TowerToHyperService::new(app.clone().layer(Extension(connection.clone())));
                    tokio::spawn(async move {
                        let builder = Builder::new(TokioExecutor::new());
                        let serving = builder.serve_connection(TokioIo::new(stream), service);
                        tokio::select! {
                            _ = serving => {}
                            // Dropping the connection's future closes the socket unanswered.
                            _ = connection.cut.notified() => {}
                        }
                    });
                }
            });
            // Dropping the runtime ends the connections still open.
        });
        let address = ready_rx.recv().expect("the server started");
        LoopbackServer {
            address,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
