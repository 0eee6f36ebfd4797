//! The streamed `/response` POST (SPEC 9): `Transfer-Encoding: chunked`, each
//! write sent at once, and real HTTP trailers for an error after streaming began.
//! ureq cannot send trailers, so this POST is written on a connection of its own.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::deadline;
use crate::diagnostic::Diagnostic;
use crate::stream::{self, Sink};

/// How long a write may wait on the Runtime API when no deadline bounds it (the
/// end of the stream, after the handler returned).
const WRITE_PATIENCE: Duration = Duration::from_secs(10);

/// The streamed answer of one invocation, to the Runtime API.
pub struct ApiStream {
    /// `host:port`.
    authority: String,
    /// `[/prefix]/2018-06-01/runtime/invocation/{id}/response`.
    path: String,
    /// The invocation's `Lambda-Runtime-Invocation-Id` header line, if it has one.
    invocation_id: String,
    connection: Option<TcpStream>,
}

impl ApiStream {
    /// For the API at `base` (`http://host:port[/prefix]/2018-06-01`).
    pub fn new(base: &str, request_id: &str, invocation_id: Option<&str>) -> Self {
        let rest = base.strip_prefix("http://").unwrap_or(base);
        let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        ApiStream {
            authority: authority.to_owned(),
            path: format!("/{prefix}/runtime/invocation/{request_id}/response"),
            invocation_id: invocation_id
                .map(|id| format!("Lambda-Runtime-Invocation-Id: {id}\r\n"))
                .unwrap_or_default(),
            connection: None,
        }
    }

    fn connection(&mut self) -> io::Result<&mut TcpStream> {
        let connection = self.connection.as_mut().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotConnected, "the stream did not start")
        })?;
        // A Runtime API that stops reading cannot hold the script past its stop.
        let patience = deadline::time_left()
            .filter(|left| !left.is_zero())
            .unwrap_or(WRITE_PATIENCE);
        connection.set_write_timeout(Some(patience))?;
        Ok(connection)
    }

    fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        let connection = self.connection()?;
        let mut framed = Vec::with_capacity(data.len() + 12);
        write!(framed, "{:x}\r\n", data.len())?;
        framed.extend_from_slice(data);
        framed.extend_from_slice(b"\r\n");
        connection.write_all(&framed)
    }
}

impl Sink for ApiStream {
    fn start(&mut self, content_type: &str, prelude: Option<&[u8]>) -> io::Result<()> {
        let mut connection = TcpStream::connect(&self.authority)?;
        connection.set_nodelay(true)?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lure/{}\r\nContent-Type: {content_type}\r\n\
             {}Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\
             Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n",
            self.path,
            self.authority,
            env!("CARGO_PKG_VERSION"),
            self.invocation_id,
        );
        connection.write_all(head.as_bytes())?;
        self.connection = Some(connection);
        if let Some(prelude) = prelude {
            self.chunk(prelude)?;
        }
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.chunk(chunk)
    }

    fn finish(&mut self, error: Option<&Diagnostic>) -> io::Result<()> {
        let mut end = b"0\r\n".to_vec();
        for (name, value) in error.map(stream::error_trailers).into_iter().flatten() {
            write!(end, "{name}: {value}\r\n")?;
        }
        end.extend_from_slice(b"\r\n");
        let connection = self.connection()?;
        connection.set_write_timeout(Some(WRITE_PATIENCE))?;
        connection.write_all(&end)?;
        connection.set_read_timeout(Some(WRITE_PATIENCE))?;
        let status = read_status(connection)?;
        self.connection = None;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "the Runtime API answered {status} to the streamed response"
            )))
        }
    }
}

/// The status of the API's answer to the POST (its body is not needed: the
/// connection is closed after it).
fn read_status(connection: &TcpStream) -> io::Result<u16> {
    let mut line = String::new();
    BufReader::new(connection).read_line(&mut line)?;
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP answer: {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_the_api_prefix() {
        let plain = ApiStream::new("http://127.0.0.1:9001/2018-06-01", "r1", None);
        assert_eq!(plain.authority, "127.0.0.1:9001");
        assert_eq!(plain.path, "/2018-06-01/runtime/invocation/r1/response");
        let prefixed = ApiStream::new("http://[::1]:9000/.rt/2018-06-01", "r2", Some("i2"));
        assert_eq!(prefixed.authority, "[::1]:9000");
        assert_eq!(
            prefixed.path,
            "/.rt/2018-06-01/runtime/invocation/r2/response"
        );
    }
}
