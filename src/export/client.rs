//! Amplitude's Export API: one request per window, the zip streamed to disk (responses approach
//! 4 GB; memory stays flat), and the one place that decides what an answer means.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use super::plan::ExportWindow;

pub const US_EXPORT_URL: &str = "https://amplitude.com/api/2/export";
pub const EU_EXPORT_URL: &str = "https://analytics.eu.amplitude.com/api/2/export";

/// What a request for one window gave.
#[derive(Debug)]
pub enum Answer {
    /// 200: the zip is at the destination path, this many bytes.
    Zip { bytes: u64 },
    /// 404: no data for the window.
    Empty,
    /// 400 (over the 4 GB limit) or 504 (timed out on too much data): split the window.
    TooLarge { status: u16 },
    /// 401 or 403: wrong keys or wrong region; stop.
    Credentials { status: u16 },
    /// 429, other 5xx, a network error or a timeout: back off and try again.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

pub struct ExportApi {
    client: reqwest::blocking::Client,
    url: String,
    api_key: String,
    secret_key: String,
}

impl ExportApi {
    pub fn new(url: &str, api_key: String, secret_key: String) -> anyhow::Result<ExportApi> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            // Amplitude can take minutes to assemble a large export.
            .timeout(Duration::from_secs(3600))
            .build()?;
        Ok(ExportApi {
            client,
            url: url.to_owned(),
            api_key,
            secret_key,
        })
    }

    /// Requests one window and streams the zip to `destination`.
    pub fn download(
        &self,
        window: &ExportWindow,
        destination: &Path,
        on_bytes: &dyn Fn(u64),
    ) -> Answer {
        let (start, end) = window.query();
        let response = self
            .client
            .get(&self.url)
            .query(&[("start", start.as_str()), ("end", end.as_str())])
            .basic_auth(&self.api_key, Some(&self.secret_key))
            .send();
        let mut response = match response {
            Ok(response) => response,
            // reqwest's message names the URL, never the keys (they are in a header).
            Err(error) => {
                return Answer::Retry {
                    reason: format!("cannot reach Amplitude: {error}"),
                    after: None,
                };
            }
        };
        let status = response.status().as_u16();
        match status {
            200 => {}
            404 => return Answer::Empty,
            400 | 504 => return Answer::TooLarge { status },
            401 | 403 => return Answer::Credentials { status },
            _ => {
                let after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok()?.trim().parse().ok())
                    .map(Duration::from_secs);
                return Answer::Retry {
                    reason: format!("Amplitude answered {status}"),
                    after,
                };
            }
        }
        let result = File::create(destination).and_then(|mut file| {
            let mut counting = CountingWriter {
                inner: &mut file,
                written: 0,
                on_bytes,
            };
            io::copy(&mut response, &mut counting)?;
            file.sync_all()?;
            Ok(())
        });
        match result.and_then(|()| std::fs::metadata(destination)) {
            Ok(metadata) => Answer::Zip {
                bytes: metadata.len(),
            },
            Err(error) => Answer::Retry {
                reason: format!("the download was interrupted: {error}"),
                after: None,
            },
        }
    }
}

struct CountingWriter<'a, W> {
    inner: W,
    written: u64,
    on_bytes: &'a dyn Fn(u64),
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.written += written as u64;
        (self.on_bytes)(written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
