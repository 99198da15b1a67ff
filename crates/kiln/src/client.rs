//! A minimal HTTP/1.1 client for the CLI commands that talk to a running Kiln.

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where a running Kiln listens.
#[derive(Debug, Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// Parses `http://host:port` (the scheme is optional).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or(url)
            .trim_end_matches('/');
        if rest.contains('/') || url.starts_with("https://") {
            bail!("the endpoint must look like http://127.0.0.1:9700, got {url:?}");
        }
        let (host, port) = rest
            .rsplit_once(':')
            .with_context(|| format!("the endpoint {url:?} has no port"))?;
        Ok(Self {
            host: host.to_owned(),
            port: port
                .parse()
                .with_context(|| format!("bad port in {url:?}"))?,
        })
    }

    /// Sends one request and returns the response with its body still streaming.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> anyhow::Result<Response<Incoming>> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| {
                format!(
                    "cannot reach Kiln at {}:{} (is `kiln serve` running?)",
                    self.host, self.port
                )
            })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake with Kiln failed")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = request;
        request.headers_mut().insert(
            hyper::header::HOST,
            format!("{}:{}", self.host, self.port)
                .parse()
                .context("bad host header")?,
        );
        sender
            .send_request(request)
            .await
            .context("request to Kiln failed")
    }

    /// Sends one request and collects the whole response body.
    pub async fn call(
        &self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(Response<()>, Bytes)> {
        let response = self.send(request).await?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .context("reading Kiln's response")?
            .to_bytes();
        Ok((Response::from_parts(parts, ()), body))
    }
}
