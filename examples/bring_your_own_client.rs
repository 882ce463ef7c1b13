//! gcm-proto driven by a different, blocking HTTP client (ureq): the core works with any
//! HTTP stack. Encode → send with anything → decode.
//!
//! Run with `cargo run --example bring_your_own_client` (it starts an in-process gcm-mock),
//! or pass an endpoint and an API key: `… -- https://fcm.googleapis.com/fcm/send KEY TOKEN`.

use std::time::SystemTime;

use gcm_proto::{Gcm, Message};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Keep the mock's runtime alive while we send.
    let (_runtime, _mock, endpoint, key, token) = match args.as_slice() {
        [endpoint, key, token] => (None, None, endpoint.clone(), key.clone(), token.clone()),
        _ => {
            let runtime = tokio::runtime::Runtime::new()?;
            let mock = runtime.block_on(gcm_mock::MockServer::builder().api_key("byo-key").start())?;
            let url = mock.url();
            (Some(runtime), Some(mock), url, "byo-key".to_owned(), "device-1".to_owned())
        }
    };

    let gcm = Gcm::new(&key)?.with_endpoint(&endpoint)?;
    let message = Message::to(token).data("hello", "from ureq");

    // ureq takes the http::Request as it is; non-2xx statuses are answers, not errors.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let request = gcm.encode(&message)?;
    println!("→ {} {} ({} bytes)", request.method(), request.uri(), request.body().len());
    let response = agent.run(request)?;
    let (parts, mut body) = response.into_parts();
    let bytes = body.read_to_vec()?;
    println!("← {}", parts.status);

    let outcome = gcm.decode_parts(&message, parts.status, &parts.headers, &bytes, SystemTime::now())?;
    for (token, message_id) in outcome.success() {
        println!("delivered to {token}: message id {message_id}");
    }
    for (token, code) in outcome.failed() {
        println!("failed for {token}: {code}");
    }
    if outcome.needs_retry() {
        println!("retry after {:?}", outcome.delay(0, &mut rand::rng()));
    }
    Ok(())
}
