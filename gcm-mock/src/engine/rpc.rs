//! FCM v1's error bodies: `google.rpc.Status` with its details (`FcmError`, `BadRequest`,
//! `QuotaFailure`), fields in the service's order, and the answer to each error code.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::http::response;

const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
pub(super) const UNAUTHENTICATED: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: Status<'a>,
}

/// `google.rpc.Status`, fields in the service's order.
#[derive(Serialize)]
struct Status<'a> {
    code: u16,
    message: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "<[Detail<'_>]>::is_empty")]
    details: &'a [Detail<'a>],
}

/// The entries of `details` the mock sends, fields in the service's order.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Detail<'a> {
    Fcm {
        #[serde(rename = "@type")]
        kind: &'static str,
        #[serde(rename = "errorCode")]
        error_code: &'a str,
    },
    BadRequest {
        #[serde(rename = "@type")]
        kind: &'static str,
        #[serde(rename = "fieldViolations")]
        field_violations: Vec<FieldViolation<'a>>,
    },
    QuotaFailure {
        #[serde(rename = "@type")]
        kind: &'static str,
        violations: [QuotaViolation<'a>; 1],
    },
}

#[derive(Serialize)]
pub(super) struct FieldViolation<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    field: &'a str,
    description: &'a str,
}

#[derive(Serialize)]
pub(super) struct QuotaViolation<'a> {
    subject: &'a str,
    description: &'a str,
}

pub(super) fn status_body(http: StatusCode, status: &str, message: &str, details: &[Detail<'_>]) -> Response<Bytes> {
    let body = ErrorBody { error: Status { code: http.as_u16(), message, status, details } };
    // Strings and numbers always serialize.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    response(http, "application/json; charset=UTF-8", Bytes::from(bytes))
}

pub(super) fn fcm_detail(error_code: &str) -> Detail<'_> {
    Detail::Fcm { kind: FCM_ERROR_TYPE, error_code }
}

pub(super) fn bad_request_detail<'a>(field: &'a str, description: &'a str) -> Detail<'a> {
    let kind = "type.googleapis.com/google.rpc.BadRequest";
    Detail::BadRequest { kind, field_violations: vec![FieldViolation { field, description }] }
}

/// 400 with one `BadRequest` detail listing several fields, each with its description, as
/// Google's parser lists unknown names.
pub(super) fn invalid_fields<'a>(message: &str, fields: impl Iterator<Item = (&'a str, &'a str)>) -> Response<Bytes> {
    let kind = "type.googleapis.com/google.rpc.BadRequest";
    let field_violations = fields.map(|(field, description)| FieldViolation { field, description }).collect();
    status_body(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, &[Detail::BadRequest { kind, field_violations }])
}

/// 400 with only a `BadRequest` detail, as for a body the service cannot map to a message.
pub(super) fn invalid_payload(field: &str, description: &str) -> Response<Bytes> {
    status_body(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", description, &[bad_request_detail(field, description)])
}

pub(super) fn invalid_value(field: &str, kind: &str, value: &Value) -> Response<Bytes> {
    invalid_payload(field, &format!("Invalid value at '{field}' ({kind}), {value}"))
}

/// 400 `INVALID_ARGUMENT` with the FCM code and the field it blames.
pub(super) fn fcm_invalid(field: &str, description: &str) -> Response<Bytes> {
    let details = [fcm_detail("INVALID_ARGUMENT"), bad_request_detail(field, description)];
    status_body(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", description, &details)
}

/// The v1 answer for an error code of the scenario (legacy names map to their v1
/// equivalents; an unknown code is sent as the FCM code of a 400).
pub(super) fn error_response(code: &str, topic: bool) -> Response<Bytes> {
    let fcm = |http: StatusCode, status: &str, message: &str, fcm_code: &str| {
        status_body(http, status, message, &[fcm_detail(fcm_code)])
    };
    match code {
        "NotRegistered" | "UNREGISTERED" => {
            fcm(StatusCode::NOT_FOUND, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        }
        "InvalidRegistration" | "INVALID_ARGUMENT" => {
            fcm_invalid("message.token", "The registration token is not a valid FCM registration token")
        }
        "MissingRegistration" => fcm_invalid("message", "Recipient of the message is not set."),
        "InvalidPackageName" => fcm_invalid("message.android.restricted_package_name", "Invalid package name"),
        "MessageTooBig" => fcm_invalid("message", "Message is too big"),
        "InvalidDataKey" => fcm_invalid(
            "message.data",
            "Invalid data key: reserved words and the \"google.\" / \"gcm\" prefixes are not allowed",
        ),
        "InvalidTtl" => fcm_invalid(
            "message.android.ttl",
            "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration)",
        ),
        "MismatchSenderId" | "SENDER_ID_MISMATCH" => {
            fcm(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
        }
        "Unavailable" | "UNAVAILABLE" => {
            fcm(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
        }
        "InternalServerError" | "INTERNAL" => {
            fcm(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "Internal error encountered.", "INTERNAL")
        }
        "DeviceMessageRateExceeded" | "TopicsMessageRateExceeded" | "QUOTA_EXCEEDED" => {
            let (subject, message) = if topic {
                ("topic", "Topic message rate exceeded.")
            } else {
                ("device", "Message rate exceeded for the device.")
            };
            let kind = "type.googleapis.com/google.rpc.QuotaFailure";
            let quota = Detail::QuotaFailure { kind, violations: [QuotaViolation { subject, description: message }] };
            status_body(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                message,
                &[fcm_detail("QUOTA_EXCEEDED"), quota],
            )
        }
        "InvalidApnsCredential" | "THIRD_PARTY_AUTH_ERROR" => fcm(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Auth error from APNS or Web Push Service",
            "THIRD_PARTY_AUTH_ERROR",
        ),
        other => fcm(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "Request contains an invalid argument.", other),
    }
}
