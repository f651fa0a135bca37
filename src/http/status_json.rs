//! What `/readyz` and `/status` (and the dashboard's event stream) answer: the engine's view
//! joined with the strategies'.

use hyper::StatusCode;
use serde_json::{Value, json};

use super::app::App;
use super::ops::{strategies_ready, strategy_json};
use super::reply::{Reply, json_reply};

pub(crate) fn readyz(app: &App) -> Reply {
    let ready = app
        .ops
        .readiness()
        .and_then(|()| strategies_ready(&app.strategies.status()));
    match ready {
        Ok(()) => json_reply(StatusCode::OK, json!({"ready": true})),
        Err(reason) => json_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "reason": reason}),
        ),
    }
}

/// The engine's status object with `"strategies"` and `"ready"` added. The host's view of the
/// strategies wins over anything the engine put under the same key.
pub(crate) fn status(app: &App) -> Value {
    let mut v = app.ops.status();
    if !v.is_object() {
        v = json!({ "engine": v });
    }
    let strategies: Vec<Value> = app.strategies.status().iter().map(strategy_json).collect();
    let ready = app
        .ops
        .readiness()
        .and_then(|()| strategies_ready(&app.strategies.status()));
    if let Some(o) = v.as_object_mut() {
        o.insert("strategies".into(), Value::Array(strategies));
        o.insert(
            "ready".into(),
            match ready {
                Ok(()) => json!(true),
                Err(r) => json!({ "reason": r }),
            },
        );
    }
    v
}
