//! The legacy GCM / FCM HTTP protocol: [`Client`] (one send), [`Report`] (what a retry loop
//! ends with) and the loop itself (`RetryLoop::run`).

mod client;
mod report;
mod retry;

pub use client::Client;
pub use report::Report;
