//! A webhook delivered to a strategy's thread: `on_webhook` run with the request, its return
//! value as the reply, and the answer counting the orders the handler placed, so the relay
//! never answers 5xx once the strategy has acted.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlua::serde::DeserializeOptions;
use mlua::{LuaSerdeExt, Value};

use super::Runner;
use crate::script::api::Ctx;
use crate::script::events::{WebhookBody, WebhookOutcome, WebhookReply, WebhookRequest};
use crate::script::sandbox;
use crate::script::tables::webhook_table;

impl Runner {
    pub(super) fn webhook(&mut self, req: WebhookRequest) {
        let WebhookRequest {
            body,
            headers,
            query,
            reply,
        } = req;
        let ctx = self.current.as_ref().map(|v| v.ctx.clone());
        let answer = Answer {
            before: ctx.as_ref().map_or(0, |c| c.orders_placed()),
            ctx,
            reply: Some(reply),
        };
        let out = self.run_webhook(&body, &headers, &query);
        answer.send(out);
    }

    fn run_webhook(
        &mut self,
        body: &WebhookBody,
        headers: &BTreeMap<String, String>,
        query: &BTreeMap<String, String>,
    ) -> WebhookReply {
        if self.held {
            return Err("strategy is paused by the operator".into());
        }
        if self.paused {
            return Err("strategy is paused after repeated errors".into());
        }
        let Some(v) = self.current.take() else {
            return Err("strategy is not loaded".into());
        };
        let out = match v.handler("on_webhook") {
            None => Err("strategy has no on_webhook handler".into()),
            Some(f) => match webhook_table(&v.lua, body, headers, query) {
                Err(e) => Err(sandbox::describe(&e)),
                Ok(t) => match self.call::<Value>(&v, "on_webhook", &f, t) {
                    None => Err(self
                        .shared
                        .status
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .last_error
                        .clone()
                        .unwrap_or_default()),
                    Some(Value::Nil) => Ok(serde_json::json!({ "ok": true })),
                    Some(ret) => v
                        .lua
                        .from_value_with::<serde_json::Value>(
                            ret,
                            DeserializeOptions::new().deny_unsupported_types(false),
                        )
                        .map_err(|e| {
                            format!(
                                "on_webhook returned a value that is not JSON: {}",
                                sandbox::describe(&e)
                            )
                        }),
                },
            },
        };
        self.current = Some(v);
        out
    }
}

/// Answers one webhook with the orders its handler placed: counted on the version's [`Ctx`]
/// between the start of the delivery and the answer. Sent from `Drop` too, so that even a panic
/// inside the handler tells the relay about orders already out (a 5xx then would make
/// TradingView resend and trade again).
struct Answer {
    reply: Option<tokio::sync::oneshot::Sender<WebhookOutcome>>,
    ctx: Option<Arc<Ctx>>,
    before: u64,
}

impl Answer {
    fn placed(&self) -> u64 {
        self.ctx
            .as_ref()
            .map_or(0, |c| c.orders_placed().saturating_sub(self.before))
    }

    fn send(mut self, reply: WebhookReply) {
        if let Some(tx) = self.reply.take() {
            let orders_placed = self.placed();
            let _ = tx.send(WebhookOutcome {
                reply,
                orders_placed,
            });
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(tx) = self.reply.take() {
            let orders_placed = self.placed();
            let _ = tx.send(WebhookOutcome {
                reply: Err("the strategy stopped while handling the webhook".into()),
                orders_placed,
            });
        }
    }
}
