//! Connections (issue 8 item 7): a client that sends its request head slowly is cut off at
//! the header-read timeout, and one address cannot hold more than its share of connections.
//! Raw TCP, since an HTTP client would send its request at once. No storage is involved, so
//! these run on SQLite only.

use crate::helpers::{Backend, TestApp, eventually, test_config};
use doorman::Config;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn spawn(edit: impl FnOnce(&mut Config)) -> (TestApp, SocketAddr) {
    let mut config = test_config(Backend::Sqlite).await;
    edit(&mut config);
    let app = TestApp::spawn_with(config).await;
    let address = app.address.trim_start_matches("http://").parse().unwrap();
    (app, address)
}

/// A connection to `server` from the loopback address `local` (any 127.x.y.z is this host).
async fn connect_from(local: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// Reads until the server closes the connection (or resets it), for at most `limit`.
/// Returns what was read and how long it took, or `None` if it was still open.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| (String::from_utf8_lossy(&received).into_owned(), started.elapsed()))
}

/// One complete request on a kept-alive connection; returns the status line.
async fn request(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: doorman.test\r\n\r\n").await.unwrap();
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buffer[..n]).lines().next().unwrap_or_default().to_owned()
}

/// A request head that stops half way is closed at the timeout (1 s here, 10 s by default),
/// with no answer; before, such connections were held for minutes. A whole request on time
/// is served as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_request_head_is_closed_at_the_header_read_timeout() {
    let (_app, server) = spawn(|c| c.header_read_timeout_seconds = 1).await;

    let mut fine = connect_from("127.0.0.1", server).await;
    assert_eq!(request(&mut fine).await, "HTTP/1.1 200 OK");

    let mut partial = connect_from("127.0.0.1", server).await;
    partial.write_all(b"GET /healthz HTTP/1.1\r\nHost: doorman.test\r\nX-Half").await.unwrap();
    let (answer, after) = read_until_closed(&mut partial, Duration::from_secs(8)).await.expect("closed within 8 s");
    assert!(after >= Duration::from_millis(800) && after < Duration::from_secs(5), "closed after {after:?}");
    assert!(!answer.contains("200 OK"), "{answer}");

    // Nothing at all after connecting: the same.
    let mut silent = connect_from("127.0.0.1", server).await;
    let (_, after) = read_until_closed(&mut silent, Duration::from_secs(8)).await.expect("closed within 8 s");
    assert!(after < Duration::from_secs(5), "closed after {after:?}");
}

/// One header line every 400 ms never completes the head: the timeout counts from the start
/// of the head, not from the last byte, so the trickle is cut off at 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_of_header_lines_is_closed_at_the_header_read_timeout() {
    let (_app, server) = spawn(|c| c.header_read_timeout_seconds = 1).await;
    let stream = connect_from("127.0.0.1", server).await;
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let closed = tokio::spawn(async move {
        let mut buffer = [0u8; 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    });
    writer.write_all(b"GET /healthz HTTP/1.1\r\nHost: doorman.test\r\n").await.unwrap();
    for i in 0..25 {
        if closed.is_finished() || writer.write_all(format!("X-Trickle-{i}: 1\r\n").as_bytes()).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let after = tokio::time::timeout(Duration::from_secs(1), closed).await.expect("closed while trickling").unwrap();
    assert!(after < Duration::from_secs(5), "closed after {after:?}, not held for the whole 10 s trickle");
}

/// Past `max_connections_per_address` open connections from one TCP peer address, new ones
/// are closed at once; another address still gets in, and a closed connection frees its slot.
/// The TCP peer counts, not a client-address header (which anyone can send without a proxy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    // A long header timeout, so that the connections held open stay open however slow the run.
    let (_app, server) = spawn(|c| {
        c.max_connections_per_address = 2;
        c.header_read_timeout_seconds = 120;
    })
    .await;
    let mut first = connect_from("127.0.0.1", server).await;
    let mut second = connect_from("127.0.0.1", server).await;
    assert_eq!(request(&mut first).await, "HTTP/1.1 200 OK");
    assert_eq!(request(&mut second).await, "HTTP/1.1 200 OK");

    let mut third = connect_from("127.0.0.1", server).await;
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: doorman.test\r\nX-Real-IP: 192.0.2.99\r\n\r\n").await;
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(3)).await.expect("the third is closed at once");
    assert!(answer.is_empty(), "closed without an answer: {answer}");

    let mut other = connect_from("127.0.0.2", server).await;
    assert_eq!(request(&mut other).await, "HTTP/1.1 200 OK", "another address is not affected");

    drop(first);
    eventually("the closed connection's slot to be freed", 5, async || {
        let mut again = connect_from("127.0.0.1", server).await;
        let _ = again.write_all(b"GET /healthz HTTP/1.1\r\nHost: doorman.test\r\n\r\n").await;
        match read_until_closed(&mut again, Duration::from_millis(500)).await {
            None => Some(()), // kept open after answering: it got in
            Some((answer, _)) if answer.starts_with("HTTP/1.1 200 OK") => Some(()),
            Some(_) => None,
        }
    })
    .await;
    assert_eq!(request(&mut second).await, "HTTP/1.1 200 OK", "the connections already open still work");
}
