//! Query-string parsing for the API: every parameter is typed and checked, unknown parameters are
//! refused, and each failure names the parameter and says why (HTTP 400).

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ipnet::IpNet;
use proto::api::ApiError;

/// An API failure and its HTTP status.
#[derive(Debug)]
pub enum Failure {
    /// 400: a parameter is wrong.
    BadParam {
        /// The parameter.
        param: String,
        /// Why.
        why: String,
    },
    /// 404.
    NotFound(String),
    /// 503: a part of the node is not running.
    Unavailable(String),
    /// 500.
    Internal(String),
    /// 401: no usable credential.
    Unauthorized(String),
    /// 403: the credential may not do this.
    Forbidden(String),
    /// 429: too many attempts.
    TooMany(String),
    /// 413: the request body is over the limit.
    TooLarge(String),
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, error, parameter) = match self {
            Failure::BadParam { param, why } => (
                StatusCode::BAD_REQUEST,
                format!("parameter `{param}`: {why}"),
                Some(param),
            ),
            Failure::NotFound(what) => (StatusCode::NOT_FOUND, what, None),
            Failure::Unavailable(what) => (StatusCode::SERVICE_UNAVAILABLE, what, None),
            Failure::Unauthorized(what) => {
                let body = Json(ApiError {
                    error: what,
                    parameter: None,
                });
                let challenge = [(axum::http::header::WWW_AUTHENTICATE, "Bearer")];
                return (StatusCode::UNAUTHORIZED, challenge, body).into_response();
            }
            Failure::Forbidden(what) => (StatusCode::FORBIDDEN, what, None),
            Failure::TooMany(what) => (StatusCode::TOO_MANY_REQUESTS, what, None),
            Failure::TooLarge(what) => (StatusCode::PAYLOAD_TOO_LARGE, what, None),
            Failure::Internal(what) => {
                tracing::error!(error = %what, "api request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, what, None)
            }
        };
        (status, Json(ApiError { error, parameter })).into_response()
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::Internal(e.to_string())
    }
}

/// An IP address in `param`, or a 400 naming it.
pub fn parse_ip(param: &str, s: &str) -> Result<std::net::IpAddr, Failure> {
    s.parse()
        .map_err(|_| bad(param, format!("`{s}` is not an IP address")))
}

/// A JSON request body, or a 400 naming `body` with what was wrong with it.
pub fn json_body<T>(
    input: Result<axum::Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, Failure> {
    input.map(|axum::Json(i)| i).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::TooLarge(format!(
                "the request body is over the API's limit of 64 KiB: {}",
                e.body_text()
            ))
        } else {
            bad("body", e.body_text())
        }
    })
}

/// Whether an event kind name (`asset.discovered`) matches a filter: a name, or a prefix and
/// `*` (`asset.*`, `*`).
pub fn kind_matches(filter: &str, kind: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => kind == filter,
    }
}

/// Builds a 400 for `param`.
pub fn bad(param: &str, why: impl Into<String>) -> Failure {
    Failure::BadParam {
        param: param.to_string(),
        why: why.into(),
    }
}

/// A request's query parameters, taken one by one; [`Params::finish`] refuses leftovers.
pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    /// Wraps decoded `key=value` pairs; a repeated key is refused.
    pub fn new(pairs: Vec<(String, String)>) -> Result<Params, Failure> {
        let mut values = HashMap::new();
        for (k, v) in pairs {
            if values.insert(k.clone(), v).is_some() {
                return Err(bad(&k, "given more than once"));
            }
        }
        Ok(Params { values })
    }

    fn take(&mut self, name: &str) -> Option<String> {
        self.values.remove(name).filter(|v| !v.is_empty())
    }

    /// A value parsed with `FromStr`, described as `what` in the error.
    pub fn parse<T: FromStr>(&mut self, name: &str, what: &str) -> Result<Option<T>, Failure> {
        self.take(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| bad(name, format!("`{v}` is not {what}")))
            })
            .transpose()
    }

    /// An address or network (`10.0.0.0/8`, `10.1.2.3`, `2001:db8::/32`).
    pub fn net(&mut self, name: &str) -> Result<Option<IpNet>, Failure> {
        self.take(name)
            .map(|v| {
                v.parse::<IpNet>()
                    .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| bad(name, format!("`{v}` is not an address or CIDR network")))
            })
            .transpose()
    }

    /// A port number.
    pub fn port(&mut self, name: &str) -> Result<Option<u16>, Failure> {
        self.parse(name, "a port number (0-65535)")
    }

    /// An IP protocol: a number or `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`.
    pub fn protocol(&mut self, name: &str) -> Result<Option<u8>, Failure> {
        self.take(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "tcp" => Ok(6),
                "udp" => Ok(17),
                "icmp" => Ok(1),
                "icmpv6" => Ok(58),
                "sctp" => Ok(132),
                other => other.parse::<u8>().map_err(|_| {
                    bad(
                        name,
                        format!("`{v}` is not a protocol number or tcp/udp/icmp/icmpv6/sctp"),
                    )
                }),
            })
            .transpose()
    }

    /// A time: Unix milliseconds, a UTC time (`2026-12-06 12:39:28` or RFC 3339), or a
    /// duration before now (`15m`, `2h`, `7d`).
    pub fn time(&mut self, name: &str, now_ms: u64) -> Result<Option<u64>, Failure> {
        self.take(name)
            .map(|v| {
                if let Ok(ms) = v.parse::<u64>() {
                    return Ok(ms);
                }
                if let Ok(t) = humantime::parse_rfc3339_weak(v.trim()) {
                    return t
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .map_err(|_| bad(name, format!("`{v}` is before 1970")));
                }
                humantime::parse_duration(&v)
                    .map(|d: Duration| now_ms.saturating_sub(d.as_millis() as u64))
                    .map_err(|_| {
                        bad(
                            name,
                            format!(
                                "`{v}` is not Unix milliseconds, a UTC time like \
                                 2026-12-06 12:39:28, or a duration like 15m"
                            ),
                        )
                    })
            })
            .transpose()
    }

    /// One of a fixed set of words.
    pub fn choice(
        &mut self,
        name: &str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, Failure> {
        self.take(name)
            .map(|v| {
                allowed
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(&v))
                    .copied()
                    .ok_or_else(|| bad(name, format!("`{v}` is not one of {}", allowed.join(", "))))
            })
            .transpose()
    }

    /// `offset` and `limit` (default `default_limit`, at most `max`).
    pub fn page(&mut self, default_limit: usize, max: usize) -> Result<(usize, usize), Failure> {
        let offset = self
            .parse::<usize>("offset", "a non-negative integer")?
            .unwrap_or(0);
        let limit = self
            .parse::<usize>("limit", "a positive integer")?
            .unwrap_or(default_limit.min(max));
        if limit == 0 || limit > max {
            return Err(bad("limit", format!("must be 1 to {max}")));
        }
        Ok((offset, limit))
    }

    /// A severity (`CRITICAL`, `WARNING`, `INFO`, any case).
    pub fn severity(&mut self, name: &str) -> Result<Option<proto::advisory::Severity>, Failure> {
        self.take(name)
            .map(|v| {
                proto::advisory::Severity::parse(&v)
                    .ok_or_else(|| bad(name, format!("`{v}` is not CRITICAL, WARNING or INFO")))
            })
            .transpose()
    }

    /// An asset role (`database`, `load_balancer`, …).
    pub fn role(&mut self, name: &str) -> Result<Option<proto::role::Role>, Failure> {
        self.take(name)
            .map(|v| {
                proto::role::Role::parse(&v)
                    .ok_or_else(|| bad(name, format!("`{v}` is not a role")))
            })
            .transpose()
    }

    /// Refuses any parameter not taken.
    pub fn finish(self) -> Result<(), Failure> {
        match self.values.into_keys().min() {
            Some(unknown) => Err(bad(&unknown, "unknown parameter")),
            None => Ok(()),
        }
    }
}

/// Cuts a page out of `items` and wraps it.
pub fn page_of<T>(items: Vec<T>, offset: usize, limit: usize) -> proto::api::Page<T> {
    let total = items.len() as u64;
    proto::api::Page {
        items: items.into_iter().skip(offset).take(limit).collect(),
        total,
        offset: offset as u64,
        limit: limit as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(v: &str) -> Result<Option<u64>, Failure> {
        Params::new(vec![("at".into(), v.into())])?.time("at", 1_000_000_000_000)
    }

    #[test]
    fn times_are_milliseconds_utc_times_or_durations_before_now() {
        assert_eq!(time("1765024768000").ok(), Some(Some(1_765_024_768_000)));
        assert_eq!(
            time("2025-12-06 12:39:28").ok(),
            Some(Some(1_765_024_768_000))
        );
        assert_eq!(
            time("2025-12-06T12:39:28Z").ok(),
            Some(Some(1_765_024_768_000))
        );
        assert_eq!(time("15m").ok(), Some(Some(1_000_000_000_000 - 900_000)));
        assert!(time("yesterday-ish").is_err());
    }
}
