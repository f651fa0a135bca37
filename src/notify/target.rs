//! `NOTIFY_URL` and `NOTIFY_EVENTS`: where notifications go (Discord, Slack and Telegram
//! recognised by their URLs, anything else generic JSON) and which events are sent. The URLs
//! hold tokens, so they live in [`Secret`]s and are named by their position, never shown.

use std::fmt;

use reqwest::Url;

use crate::secret::Secret;

/// How a target wants its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// `https://discord.com/api/webhooks/<id>/<token>`: `{"content": ...}`.
    Discord,
    /// `https://hooks.slack.com/services/...`: `{"text": ...}`.
    Slack,
    /// `https://api.telegram.org/bot<token>/sendMessage?chat_id=<chat>`: the Bot API's
    /// `sendMessage` with the chat in the body.
    Telegram { chat_id: String },
    /// Anything else: `{"source": "moontick", "kind", "text", "event"}`.
    Generic,
}

impl TargetKind {
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Discord => "Discord",
            TargetKind::Slack => "Slack",
            TargetKind::Telegram { .. } => "Telegram",
            TargetKind::Generic => "JSON webhook",
        }
    }
}

/// One place notifications go. `Debug` and `Display` name it by position and kind only: the URL
/// carries a token.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    /// Where to POST (for Telegram without the query: the chat goes in the body).
    pub url: Secret,
    /// 1-based position in `NOTIFY_URL`, for messages.
    pub position: usize,
}

impl Target {
    /// A target of a known kind (tests point a Discord-shaped target at a local receiver).
    pub fn new(kind: TargetKind, url: impl Into<String>, position: usize) -> Self {
        Self {
            kind,
            url: Secret::new(url),
            position,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NOTIFY_URL #{} ({})", self.position, self.kind.name())
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// Which events are sent (`NOTIFY_EVENTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSet {
    pub fills: bool,
    /// The kill switch fired, or was lifted.
    pub halts: bool,
    /// A strategy stuck, crashed or paused (and running again).
    pub strategies: bool,
    /// A strategy save that did not load.
    pub reloads: bool,
    /// A hub down for longer than the feed-down delay (30 s), and back.
    pub feed: bool,
    /// The summary at the CME trading day's close.
    pub session: bool,
}

/// The names `NOTIFY_EVENTS` takes, in order.
pub const EVENT_NAMES: [&str; 6] = ["fills", "halts", "strategies", "reloads", "feed", "session"];

impl Default for EventSet {
    /// Everything but fills: what needs a human (fills are in the journal and may be many).
    fn default() -> Self {
        Self {
            fills: false,
            ..Self::all()
        }
    }
}

impl EventSet {
    pub fn all() -> Self {
        Self {
            fills: true,
            halts: true,
            strategies: true,
            reloads: true,
            feed: true,
            session: true,
        }
    }

    fn none() -> Self {
        Self {
            fills: false,
            halts: false,
            strategies: false,
            reloads: false,
            feed: false,
            session: false,
        }
    }

    /// Reads a comma-separated list of [`EVENT_NAMES`] (or `all`).
    ///
    /// # Errors
    /// Naming the unknown entries and the valid names.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut set = Self::none();
        let mut unknown = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "all" => set = Self::all(),
                "fills" | "fill" => set.fills = true,
                "halts" | "halt" => set.halts = true,
                "strategies" | "strategy" => set.strategies = true,
                "reloads" | "reload" => set.reloads = true,
                "feed" => set.feed = true,
                "session" => set.session = true,
                _ => unknown.push(format!("{name:?}")),
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "NOTIFY_EVENTS: unknown event(s) {}; use a comma-separated list of {} (or all)",
                unknown.join(", "),
                EVENT_NAMES.join(", ")
            ));
        }
        if set == Self::none() {
            return Err(format!(
                "NOTIFY_EVENTS names no event; use a comma-separated list of {} (or all)",
                EVENT_NAMES.join(", ")
            ));
        }
        Ok(set)
    }
}

/// The notification settings from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifyConfig {
    pub targets: Vec<Target>,
    pub events: EventSet,
}

impl NotifyConfig {
    /// Reads `NOTIFY_URL` (comma-separated) and `NOTIFY_EVENTS`.
    ///
    /// # Errors
    /// Every problem, each naming the entry by position (never its text: it holds a token).
    pub fn parse(urls: Option<&str>, events: Option<&str>) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let mut targets = Vec::new();
        for (i, raw) in urls
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            match parse_target(raw, i + 1) {
                Ok(t) => targets.push(t),
                Err(e) => errors.push(format!("NOTIFY_URL #{}: {e}", i + 1)),
            }
        }
        let events = match events.map(str::trim).filter(|s| !s.is_empty()) {
            None => EventSet::default(),
            Some(s) => EventSet::parse(s).unwrap_or_else(|e| {
                errors.push(e);
                EventSet::default()
            }),
        };
        if errors.is_empty() {
            Ok(Self { targets, events })
        } else {
            Err(errors)
        }
    }
}

/// Recognises a target by its host and path. Errors never quote the URL.
fn parse_target(raw: &str, position: usize) -> Result<Target, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "must be an http(s) URL, not a {:?} one",
            url.scheme()
        ));
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let path = url.path();
    let kind = match host.as_str() {
        "discord.com" | "discordapp.com" | "ptb.discord.com" | "canary.discord.com" => {
            if !path.starts_with("/api/webhooks/") {
                return Err(
                    "a Discord URL must be a webhook URL (https://discord.com/api/webhooks/...)"
                        .into(),
                );
            }
            TargetKind::Discord
        }
        "hooks.slack.com" => TargetKind::Slack,
        "api.telegram.org" => {
            let chat_id = url
                .query_pairs()
                .find(|(k, _)| k == "chat_id")
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or(
                    "a Telegram URL needs the chat: https://api.telegram.org/bot<token>/sendMessage?chat_id=<chat>",
                )?;
            let bot = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .filter(|b| b.starts_with("bot") && b.len() > 3)
                .ok_or("a Telegram URL must start with /bot<token>")?;
            let mut send = url.clone();
            send.set_path(&format!("/{bot}/sendMessage"));
            send.set_query(None);
            return Ok(Target::new(
                TargetKind::Telegram { chat_id },
                send.as_str(),
                position,
            ));
        }
        _ => TargetKind::Generic,
    };
    Ok(Target::new(kind, url.as_str(), position))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISCORD: &str = "https://discord.com/api/webhooks/123/SeCrEtDiScOrDtOkEn";
    const SLACK: &str = "https://hooks.slack.com/services/T0/B0/SeCrEtSlAcK";
    const TELEGRAM: &str =
        "https://api.telegram.org/bot123:SeCrEtTeLeGrAm/sendMessage?chat_id=-10042";

    #[test]
    fn discord_slack_telegram_are_recognised_and_anything_else_is_generic() {
        let urls = format!("{DISCORD}, {SLACK},{TELEGRAM} , https://ntfy.example/alerts");
        let c = NotifyConfig::parse(Some(&urls), None).unwrap();
        let kinds: Vec<&TargetKind> = c.targets.iter().map(|t| &t.kind).collect();
        assert_eq!(
            kinds,
            [
                &TargetKind::Discord,
                &TargetKind::Slack,
                &TargetKind::Telegram {
                    chat_id: "-10042".into()
                },
                &TargetKind::Generic
            ]
        );
        assert_eq!(
            c.targets[2].url.expose(),
            "https://api.telegram.org/bot123:SeCrEtTeLeGrAm/sendMessage"
        );
        assert_eq!(c.events, EventSet::default());
        assert!(!c.events.fills);
    }

    #[test]
    fn a_bad_url_is_named_by_position_and_its_token_never_shown() {
        let urls = format!(
            "{DISCORD},ftp://x.example/SeCrEtFtP,https://discord.com/SeCrEtNoHook,\
             https://api.telegram.org/botSeCrEtTeLeGrAm/sendMessage,not a url SeCrEt"
        );
        let errors = NotifyConfig::parse(Some(&urls), Some("fills,bogus")).unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("NOTIFY_URL #2: must be an http(s) URL"));
        assert!(errors[1].starts_with("NOTIFY_URL #3: a Discord URL must be a webhook URL"));
        assert!(errors[2].starts_with("NOTIFY_URL #4: a Telegram URL needs the chat"));
        assert!(errors[3].starts_with("NOTIFY_URL #5: not a URL"));
        assert!(errors[4].contains("unknown event(s) \"bogus\""));
        for e in &errors {
            assert!(!e.contains("SeCrEt"), "{e}");
        }
        let c = NotifyConfig::parse(Some(DISCORD), None).unwrap();
        let shown = format!("{c:?} {}", c.targets[0]);
        assert!(!shown.contains("SeCrEt"), "{shown}");
        assert!(shown.contains("NOTIFY_URL #1 (Discord)"));
    }

    #[test]
    fn notify_events_takes_names_or_all() {
        let s = EventSet::parse(" Fills , feed").unwrap();
        assert!(s.fills && s.feed && !s.halts && !s.session);
        assert_eq!(EventSet::parse("all").unwrap(), EventSet::all());
        assert!(EventSet::parse(" , ").is_err());
    }
}
