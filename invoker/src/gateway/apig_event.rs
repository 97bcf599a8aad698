//! The APIG event a function receives and the answer it gives, as FunctionGraph documents
//! them (research notes §6.4).
//!
//! The event: `body` base64 with `isBase64Encoded` true, `headers` (lower-case names, repeated
//! headers joined with `,`), `queryStringParameters` (the first value of a repeated
//! parameter), `pathParameters`, `httpMethod`, `path`, `requestContext` (`apiId` = the trigger
//! id, `requestId`, `stage`, `sourceIp`).
//!
//! The answer must be a JSON object with an integer `statusCode`, and may have `headers`
//! (string values, or arrays of strings for a repeated header), `body` (a string; base64 when
//! `isBase64Encoded` is true; other JSON is written as JSON text) and `isBase64Encoded`.
//! Anything else is FunctionGraph's FSS.1202 (500).

use std::net::IpAddr;

use axum::body::Body;
use axum::http::header::{HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Map, Value};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What the event is made of besides the request.
pub struct Context<'a> {
    pub api_id: &'a str,
    pub request_id: &'a str,
    pub stage: &'a str,
    pub source_ip: IpAddr,
    pub path_parameters: &'a [(String, String)],
}

/// The APIG event of a request.
pub fn event(parts: &Parts, body: &[u8], context: &Context<'_>) -> Vec<u8> {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        match headers.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value.into_owned()));
            }
        }
    }
    let ip = context.source_ip.to_string();
    headers.entry("x-real-ip").or_insert_with(|| json!(ip));
    headers
        .entry("x-forwarded-for")
        .or_insert_with(|| json!(ip));
    headers.insert("x-request-id".into(), json!(context.request_id));
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
        query
            .entry(k.into_owned())
            .or_insert(Value::String(v.into_owned()));
    }
    let path_parameters: Map<String, Value> = context
        .path_parameters
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "body": BASE64.encode(body),
        "isBase64Encoded": true,
        "headers": headers,
        "queryStringParameters": query,
        "pathParameters": path_parameters,
        "httpMethod": parts.method.as_str(),
        "path": parts.uri.path(),
        "requestContext": {
            "apiId": context.api_id,
            "requestId": context.request_id,
            "stage": context.stage,
            "sourceIp": ip,
        },
    })
    .to_string()
    .into_bytes()
}

/// The HTTP answer a function's result describes, or why it describes none.
pub fn response(result: &[u8]) -> Result<Response, String> {
    let answer: Value = serde_json::from_slice(result)
        .map_err(|_| "the function's result is not a JSON object".to_string())?;
    let Value::Object(answer) = answer else {
        return Err("the function's result is not a JSON object".into());
    };
    let status = answer
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| (100..600).contains(&s.as_u16()))
        .ok_or("the result has no valid statusCode (an integer 100-599)")?;
    let base64 = answer
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = match answer.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if base64 => BASE64.decode(s).map_err(|e| {
            format!("body is not valid base64 although isBase64Encoded is true: {e}")
        })?,
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = match answer.get("headers") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(h)) => h.clone(),
        Some(_) => return Err("headers is not an object".into()),
    };
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} is invalid"))?;
        let values = match value {
            Value::Array(values) => values,
            one => vec![one],
        };
        for value in values {
            let text = match value {
                Value::String(s) => s,
                Value::Null => continue,
                other => other.to_string(),
            };
            let value = HeaderValue::from_str(&text)
                .map_err(|_| format!("header {name} has an invalid value"))?;
            response.headers_mut().append(name.clone(), value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let r = response(
            br#"{"statusCode": 201, "headers": {"a": "1", "b": ["x", "y"], "n": 5},
            "body": "aGk=", "isBase64Encoded": true}"#,
        )
        .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers().get_all("b").iter().count(), 2);
        assert_eq!(r.headers()["n"], "5");
        for bad in [
            &b"\"text\""[..],
            b"{}",
            b"{\"statusCode\": \"200\"}",
            b"{\"statusCode\": 99}",
            b"{\"statusCode\": 200, \"body\": \"!!\", \"isBase64Encoded\": true}",
            b"{\"statusCode\": 200, \"headers\": {\"a b\": \"1\"}}",
            b"not json",
        ] {
            assert!(response(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
