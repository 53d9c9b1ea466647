//! The HTTP side's plumbing: JSON errors with their statuses, extractors
//! whose rejections are JSON errors too, the bearer token check and the
//! refusal of new requests while draining.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::service::App;

/// An error as the service returns it:
/// `{"success": false, "error": {"code": "…", "message": "…"}}`, with extra
/// fields in `error` where they help (a conflict's `actualVersion`).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> ApiError {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = self.extra.unwrap_or_default();
        error.insert("code".into(), self.code.into());
        error.insert("message".into(), self.message.into());
        let body = json!({ "success": false, "error": error });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What rwlog's errors mean to a client.
impl From<rwlog::Error> for ApiError {
    fn from(e: rwlog::Error) -> ApiError {
        use rwlog::Error;
        match e {
            Error::Conflict {
                ref stream,
                expected,
                actual,
            } => ApiError::new(StatusCode::CONFLICT, "VERSION_CONFLICT", e.to_string())
                .with("streamId", stream.as_str())
                .with(
                    "expectedVersion",
                    match expected {
                        rwlog::Expected::Exact(v) => serde_json::Value::from(v),
                        rwlog::Expected::NoStream => 0.into(),
                        other => other.to_string().into(),
                    },
                )
                .with("actualVersion", actual),
            Error::Closed | Error::Full => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                e.to_string(),
            ),
            Error::PositionOutOfRange { head, .. } => {
                ApiError::bad_request(e.to_string()).with("head", head.0)
            }
            Error::TooLarge { .. } | Error::EmptyAppend => ApiError::bad_request(e.to_string()),
            Error::Timeout { .. } => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "TIMEOUT", e.to_string())
            }
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                other.to_string(),
            ),
        }
    }
}

/// `axum::Json`, rejecting with a JSON error: 413 past the body cap, 415
/// without a JSON content type, 400 for anything malformed (syntax, a
/// missing or unknown field, a wrong type).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        body_error(r.status(), r.body_text())
    }
}

/// The error for a body that could not be read or parsed.
pub fn body_error(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(status, "PAYLOAD_TOO_LARGE", text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(status, "UNSUPPORTED_MEDIA_TYPE", text),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "INVALID_JSON", text),
    }
}

/// A raw body (JSON parsed by the handler), rejecting with a JSON error:
/// 413 past the body cap.
#[derive(Debug)]
pub struct ApiBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<ApiBody, ApiError> {
        axum::body::Bytes::from_request(request, state)
            .await
            .map(ApiBody)
            .map_err(|r: BytesRejection| body_error(r.status(), r.body_text()))
    }
}

/// `axum::extract::Query`, rejecting with a JSON 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

/// Who may call: a bearer token on every mutating request, and on reads
/// too when so configured (`/health` stays open). 401 without a token,
/// 403 with a wrong one. The comparison takes the same time wherever the
/// tokens differ.
pub async fn authorize(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(expected) = app.config.token.as_deref() else {
        return next.run(request).await;
    };
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    if request.uri().path() == "/health" || (reading && !app.config.auth_reads) {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "this request needs `Authorization: Bearer <token>`",
        )
        .into_response(),
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "the token is not valid")
            .into_response(),
    }
}

/// Refuses new requests once the service is draining: 503, so a load
/// balancer moves on while the requests already in flight finish.
pub async fn refuse_while_draining(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    if app.is_draining() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            "the service is shutting down",
        )
        .into_response();
    }
    let method = request.method().clone();
    let response = next.run(request).await;
    metrics::counter!(
        "http_requests_total",
        "method" => method.as_str().to_owned(),
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}

/// 404 for a path no route serves.
pub async fn no_route() -> ApiError {
    ApiError::not_found("NOT_FOUND", "no such endpoint")
}

/// 405 for a method the path does not serve.
pub async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this endpoint does not take that method",
    )
}

/// A successful response: `{"success": true, "data": …}`.
pub fn ok(status: StatusCode, data: impl serde::Serialize) -> Response {
    #[derive(serde::Serialize)]
    struct Success<T> {
        success: bool,
        data: T,
    }
    let body = Success {
        success: true,
        data,
    };
    (status, axum::Json(body)).into_response()
}
