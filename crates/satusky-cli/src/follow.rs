//! Following a WebSocket stream until the server ends it or Ctrl-C.

use satusky_client::JsonStream;
use serde::de::DeserializeOwned;

use crate::error::CliError;

/// Calls `each` with every item of `stream` until the server closes it or
/// the user presses Ctrl-C (both end successfully); the first error ends it.
pub async fn follow<T: DeserializeOwned>(
    mut stream: JsonStream<T>,
    mut each: impl FnMut(T) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let result = loop {
        let next = tokio::select! {
            item = stream.next() => item,
            _ = tokio::signal::ctrl_c() => None,
        };
        match next {
            None => break Ok(()),
            Some(Err(e)) => break Err(e.into()),
            Some(Ok(item)) => {
                if let Err(e) = each(item) {
                    break Err(e);
                }
            }
        }
    };
    stream.close().await;
    result
}
