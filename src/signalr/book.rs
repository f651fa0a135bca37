//! The connection task's bookkeeping: the commands handles send it, the subscriptions it
//! replays after a reconnect, the calls waiting for their Completion, and the calls held back
//! while connecting.

use std::collections::HashMap;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::codec::{Completion, Invocation, Message, Outcome};
use super::error::HubError;
use super::sink::{EventSink, HubEvent};

pub(super) type Reply = oneshot::Sender<Result<Value, HubError>>;

/// A subscription as replayed after a reconnect: the method and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Subscription {
    pub(super) method: String,
    pub(super) args: Vec<Value>,
}

pub(super) enum Command {
    /// `reply: None` is a fire-and-forget send.
    Invoke {
        target: String,
        args: Vec<Value>,
        reply: Option<Reply>,
    },
    Subscribe {
        sub: Subscription,
        reply: Reply,
    },
    Unsubscribe {
        sub: Subscription,
        unsubscribe_method: String,
        reply: Reply,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// What the connection task mutates; kept apart from `Shared` so a connect in progress (which
/// borrows `Shared`) can run while commands are still served.
pub(super) struct Book<S> {
    pub(super) cmds: mpsc::UnboundedReceiver<Command>,
    sink: S,
    pub(super) subs: Vec<Subscription>,
    pending: HashMap<String, Pending>,
    next_id: u64,
    events_closed_warned: bool,
    /// Calls received while connecting, sent once live.
    pub(super) deferred: Vec<Command>,
}

struct Pending {
    target: String,
    reply: Option<Reply>,
    /// Set for subscribe calls: a Completion error forgets the subscription.
    sub: Option<Subscription>,
}

impl<S: EventSink> Book<S> {
    pub(super) fn new(cmds: mpsc::UnboundedReceiver<Command>, sink: S) -> Self {
        Book {
            cmds,
            sink,
            subs: Vec::new(),
            pending: HashMap::new(),
            next_id: 0,
            events_closed_warned: false,
            deferred: Vec::new(),
        }
    }

    /// The message a call becomes on a live connection (`Close` is handled by the caller).
    pub(super) fn live_command(&mut self, cmd: Command) -> Option<Message> {
        Some(match cmd {
            Command::Invoke {
                target,
                args,
                reply,
            } => match reply {
                Some(reply) => self.invocation(&target, args, Some(reply), None),
                None => Message::Invocation(Invocation::new(target, args)),
            },
            Command::Subscribe { sub, reply } => {
                self.record(sub.clone());
                let (method, args) = (sub.method.clone(), sub.args.clone());
                self.invocation(&method, args, Some(reply), Some(sub))
            }
            Command::Unsubscribe {
                sub,
                unsubscribe_method,
                reply,
            } => {
                self.subs.retain(|s| *s != sub);
                self.invocation(&unsubscribe_method, sub.args, Some(reply), None)
            }
            Command::Close { .. } => return None,
        })
    }

    /// Answers a call while disconnected: subscriptions are recorded (the replay sends them once
    /// live), other calls fail with `NotConnected`.
    pub(super) fn offline_command(&mut self, hub: &str, cmd: Command) {
        match cmd {
            Command::Invoke { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(HubError::NotConnected { hub: hub.into() }));
                }
            }
            Command::Subscribe { sub, reply } => {
                self.record(sub);
                let _ = reply.send(Ok(Value::Null));
            }
            Command::Unsubscribe { sub, reply, .. } => {
                self.subs.retain(|s| *s != sub);
                let _ = reply.send(Ok(Value::Null));
            }
            Command::Close { reply } => {
                let _ = reply.send(());
            }
        }
    }

    pub(super) fn record(&mut self, sub: Subscription) {
        if !self.subs.contains(&sub) {
            self.subs.push(sub);
        }
    }

    /// Builds an invocation with a fresh id and remembers who waits for its Completion.
    pub(super) fn invocation(
        &mut self,
        target: &str,
        args: Vec<Value>,
        reply: Option<Reply>,
        sub: Option<Subscription>,
    ) -> Message {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.pending.insert(
            id.clone(),
            Pending {
                target: target.into(),
                reply,
                sub,
            },
        );
        Message::Invocation(Invocation::new(target, args).with_id(id))
    }

    pub(super) fn complete(&mut self, hub: &str, c: Completion) {
        let Some(p) = self.pending.remove(&c.invocation_id) else {
            tracing::debug!(hub, id = %c.invocation_id, "Completion for no pending invocation");
            return;
        };
        let result = match c.outcome {
            Outcome::Void => Ok(Value::Null),
            Outcome::Result(v) => Ok(v),
            Outcome::Error(message) => {
                tracing::warn!(hub, target = %p.target, "SignalR {hub} hub error: {message}");
                if let Some(sub) = &p.sub {
                    // Replaying a subscription the server refuses would only fail again.
                    self.subs.retain(|s| s != sub);
                }
                Err(HubError::Server {
                    hub: hub.into(),
                    message,
                })
            }
        };
        if let Some(reply) = p.reply {
            let _ = reply.send(result);
        }
    }

    /// Answers every pending call after a drop. Subscriptions stay recorded and will be replayed,
    /// so their callers get `Ok`.
    pub(super) fn fail_pending(&mut self, hub: &str, reason: &str) {
        for (_, p) in self.pending.drain() {
            if let Some(reply) = p.reply {
                let result = if p.sub.is_some() {
                    Ok(Value::Null)
                } else {
                    Err(HubError::ConnectionLost {
                        hub: hub.into(),
                        reason: reason.into(),
                    })
                };
                let _ = reply.send(result);
            }
        }
    }

    pub(super) async fn emit(&mut self, hub: &str, event: HubEvent) {
        if !self.sink.event(event).await && !self.events_closed_warned {
            self.events_closed_warned = true;
            tracing::warn!(hub, "hub events are arriving but nobody is receiving them");
        }
    }
}
