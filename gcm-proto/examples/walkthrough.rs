//! The Python gcm-client walkthrough, sans-IO: build a plain-text unicast and a JSON
//! multicast, "send" them (the responses below are real bodies from Google's documentation),
//! and print what a sender must act on.
//!
//! Run with `cargo run --example walkthrough`.

use std::time::SystemTime;

use gcm_proto::http::Response;
use gcm_proto::{Gcm, Message, Outcome, ResponseError};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gcm = Gcm::new("my-api-key")?;

    let unicast = Message::plain_text("23").data("str", "string").data("int", 10).dry_run(true);
    let multicast = Message::multicast(["4", "8", "15", "16", "23", "42"])
        .data("str", "string")
        .data("int", 10)
        .collapse_key("my.key")
        .dry_run(true);

    // What your HTTP client of choice would send, and what the server answered.
    let exchanges = [
        (&unicast, response(200, None, "id=1:2342\nregistration_id=32\n")?),
        (&multicast, response(200, Some("10"), GOOGLE_SIX_RECIPIENTS)?),
        (&multicast, response(503, None, "")?),
        (&multicast, response(401, None, "<HTML><TITLE>Unauthorized</TITLE></HTML>")?),
    ];

    let mut rng = StdRng::seed_from_u64(7); // any rand_core generator; seeded, so the output is stable
    for (message, response) in exchanges {
        let request = gcm.encode(message)?;
        println!("POST {} ({})", request.uri(), request.headers()["content-type"].to_str()?);
        println!("  {}", String::from_utf8_lossy(request.body()));
        println!("← HTTP {}", response.status());
        match gcm.decode(message, &response, SystemTime::now()) {
            Ok(outcome) => report(&outcome, &mut rng),
            Err(ResponseError::Authentication { .. }) => println!("  authentication failed: check the API key"),
            Err(error) => println!("  error: {error}"),
        }
        println!();
    }
    Ok(())
}

fn report(outcome: &Outcome, rng: &mut StdRng) {
    for (token, message_id) in outcome.success() {
        println!("  delivered     {token} → message id {message_id}");
    }
    for (token, canonical) in outcome.canonical() {
        println!("  canonical     replace {token} with {canonical} in your database");
    }
    for token in outcome.not_registered() {
        println!("  unregistered  remove {token} from your database");
    }
    for (token, code) in outcome.failed() {
        println!("  failed        {token}: {code} (do not retry)");
    }
    if let Some(retry) = outcome.retry() {
        let delay = outcome.delay(0, rng);
        println!("  retry         {:?} after {delay:.1?} (schedule it in your job queue)", retry.tokens());
    }
}

fn response(status: u16, retry_after: Option<&str>, body: &str) -> http::Result<Response<Vec<u8>>> {
    let mut response = Response::builder().status(status);
    if let Some(value) = retry_after {
        response = response.header("retry-after", value);
    }
    response.body(body.as_bytes().to_vec())
}

/// Google's documented response for recipients 4, 8, 15, 16, 23 and 42.
const GOOGLE_SIX_RECIPIENTS: &str = r#"{ "multicast_id": 216, "success": 3, "failure": 3, "canonical_ids": 1,
  "results": [
    { "message_id": "1:0408" },
    { "error": "Unavailable" },
    { "error": "InvalidRegistration" },
    { "message_id": "1:1516" },
    { "message_id": "1:2342", "registration_id": "32" },
    { "error": "NotRegistered"}
  ]
}"#;
